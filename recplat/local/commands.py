"""Commands the local platform tells the user to run next, written so they run as printed.

A command printed as a hint is copied into a shell, so it must work there: started with
`uv run recplat ...`, `recplat` is not on the shell's PATH and the hint needs the `uv run`
prefix too (and `--project` when the shell is outside the repository); a platform started
with `--state-dir` is only found again with the same `--state-dir`; paths are shown
relative to the working directory when they are under it, and quoted for the shell.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from urllib.parse import unquote, urlparse

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_STATE_DIR = PROJECT_ROOT / ".scratch" / "local"


def shell_path(path: Path | str) -> str:
    """`path` for a command line: relative to the working directory when under it, quoted."""
    absolute = Path(path).resolve()
    try:
        shown = str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = str(absolute)
    return shlex.quote(shown)


def recplat_program() -> str:
    """How to start `recplat` from the user's shell, judged by how this process was started."""
    # `uv run` sets UV to its own binary; its venv's `recplat` is then not on the shell's PATH.
    if not os.environ.get("UV"):
        return "recplat"
    try:
        Path.cwd().resolve().relative_to(PROJECT_ROOT)
    except ValueError:
        return f"uv run --project {shlex.quote(str(PROJECT_ROOT))} recplat"
    return "uv run recplat"


def recplat_command(*args: str, state_dir: Path | None = None) -> str:
    """A `recplat` command line; `--state-dir` is added when `state_dir` is not the default."""
    words = [recplat_program(), *(shlex.quote(arg) for arg in args)]
    if state_dir is not None and Path(state_dir).resolve() != DEFAULT_STATE_DIR:
        words += ["--state-dir", shell_path(state_dir)]
    return " ".join(words)


def lake_argument(lake_uri: str) -> str:
    """The lake as the user types it: a folder lake as a (relative) path, else its URI."""
    parsed = urlparse(lake_uri)
    if parsed.scheme != "file":
        return shlex.quote(lake_uri)
    return shell_path(unquote(parsed.path))
