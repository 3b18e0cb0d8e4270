"""Read the commands `recplat local up` prints as next steps, and run them as printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from recplat.local.summary import NEXT_STEPS_HEADING


def next_commands_in(output: str) -> list[str]:
    """The commands under the next-steps heading: the indented lines that follow it."""
    lines = output.splitlines()
    assert NEXT_STEPS_HEADING in lines, f"no next steps in:\n{output}"
    commands = []
    for line in lines[lines.index(NEXT_STEPS_HEADING) + 1 :]:
        if not line.startswith("  "):
            break
        commands.append(line.strip())
    return commands


def run_as_printed(
    command: str, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `command` in bash exactly as printed, from the directory `up` ran in.

    The venv's bin is on PATH as in a shell where it is activated (then `recplat` is printed
    without `uv run`), and so is the `uv` that started the tests (then it is printed with
    `uv run`); UV_FROZEN keeps a printed `uv run` from rewriting the shared lock.
    """
    bins = [str(Path(sys.executable).parent)]
    if os.environ.get("UV"):
        bins.append(str(Path(os.environ["UV"]).parent))
    path = os.pathsep.join([*bins, os.environ.get("PATH", "")])
    return subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env={**os.environ, "PATH": path, "UV_FROZEN": "1"},
    )
