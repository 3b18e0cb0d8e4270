"""What the user sees while the local platform works: one line per stage with its duration.

Each stage prints what it is about to do, then how long it took (or that it failed); long
stages get a rich progress bar. Output goes to the given console, so tests can capture it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)


class StageReporter:
    """Prints stage starts and ends with wall-clock durations, and keeps them for the report."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.durations: dict[str, float] = {}

    @contextmanager
    def stage(self, title: str) -> Iterator[None]:
        """Announce `title`, run the block, then print its duration (or that it failed)."""
        self.console.print(f"[bold cyan]==>[/] {title} ...")
        started = time.monotonic()
        try:
            yield
        except BaseException:
            elapsed = time.monotonic() - started
            self.durations[title] = elapsed
            self.console.print(f"[bold red]  x[/] {title}: failed after {elapsed:.1f} s")
            raise
        elapsed = time.monotonic() - started
        self.durations[title] = elapsed
        self.console.print(f"[green]  ok[/] {title} ({elapsed:.1f} s)")

    def progress(self) -> Progress:
        """A progress bar for a long stage; use as a context manager and add tasks to it."""
        return Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
