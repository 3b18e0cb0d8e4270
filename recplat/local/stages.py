"""What the user sees while the local platform works: one line per stage with its duration.

Each stage prints what it is about to do, then how long it took (or that it failed); long
stages get a rich progress bar. Output goes to the given console, so tests can capture it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

if TYPE_CHECKING:
    from recplat.brand import Brand
    from recplat.local.workloads import ExperimentsOutcome, WorkloadWiring


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


def evaluate_experiments_stage(
    reporter: StageReporter,
    brands: Mapping[str, tuple[Brand, str]],
    wiring: WorkloadWiring,
    log_dir: Path,
) -> dict[str, ExperimentsOutcome]:
    """The stage after traffic: `ranking-experiments evaluate` for each brand (its `Brand` and
    lake URI), one after the other; prints each brand's report, or why it failed."""
    from recplat.local.workloads import run_experiments

    outcomes: dict[str, ExperimentsOutcome] = {}
    with reporter.stage("evaluate each brand's online experiment"):
        for name, (brand, lake_uri) in brands.items():
            outcome = run_experiments("evaluate", brand, lake_uri, wiring, log_dir)
            outcomes[name] = outcome
            prefix = "" if outcome.succeeded else f"{name}: failed: "
            # Plain text: the report's intervals look like rich markup ("[0.1, 0.2]").
            for line in (prefix + outcome.report).splitlines():
                reporter.console.print(f"     {line}", markup=False, highlight=False)
    return outcomes
