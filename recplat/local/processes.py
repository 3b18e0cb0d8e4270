"""Child processes of the local platform: start, wait for, and stop them without orphans.

Every program the platform runs (MLflow, Azurite, a training job, a ranking service)
starts in its own session, so it leads a process group of its own. Stopping a program
signals that whole group, then any descendant that escaped it, so a server's workers
never outlive it. Output goes to a log file per program, never to the terminal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

LOOPBACK = "127.0.0.1"


class LocalPlatformError(Exception):
    """A failure the user can act on; its message says what went wrong and how to fix it."""


class PortInUseError(LocalPlatformError):
    """A port the platform needs is already taken by another program."""


class ProcessExitedError(LocalPlatformError):
    """A child process exited before it became ready."""


@dataclass(frozen=True)
class StartedProcess:
    """A program the platform started: what it is, its process id and where it logs."""

    name: str
    pid: int
    log_path: Path
    port: int | None = None
    # psutil's create time: `down` from another shell only signals a pid whose create time
    # still matches, so a pid the kernel reused for some other program is left alone.
    create_time: float = 0.0


def free_port() -> int:
    """Return a TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_port_free(port: int, purpose: str) -> None:
    """Fail with a clear message if `port` on 127.0.0.1 is already taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError as error:
            raise PortInUseError(
                f"port {port} on {LOOPBACK} is already in use, so {purpose} cannot start; "
                f"stop the program using it (`ss -ltnp 'sport = :{port}'` shows which) "
                "or run `recplat local down` if it is a platform left running"
            ) from error


def port_is_listening(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def start_process(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    port: int | None = None,
) -> StartedProcess:
    """Start `argv` in a new session with stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    child_env = dict(os.environ)
    if env:
        child_env.update(env)
    with log_path.open("ab") as log:
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env,
                cwd=cwd,
                # A session of its own: Ctrl-C in the terminal reaches only the platform,
                # which then stops each child group in order instead of all at once.
                start_new_session=True,
            )
        except FileNotFoundError as error:
            raise LocalPlatformError(
                f"cannot start {name}: program {argv[0]!r} not found; "
                "run `make setup` (or `uv sync --all-extras`) first"
            ) from error
    _POPENS[popen.pid] = popen
    try:
        create_time = psutil.Process(popen.pid).create_time()
    except psutil.Error:
        create_time = 0.0
    return StartedProcess(
        name=name, pid=popen.pid, log_path=log_path, port=port, create_time=create_time
    )


def is_same_process(pid: int, create_time: float) -> bool:
    """True when `pid` is still the process recorded with `create_time` and it is alive."""
    try:
        process = psutil.Process(pid)
        alive = process.status() != psutil.STATUS_ZOMBIE
        return alive and (create_time == 0.0 or abs(process.create_time() - create_time) < 1.0)
    except psutil.Error:
        return False


# Popen objects of children started by this process, so their exit status gets reaped
# (no zombies) and `is_running` sees an exited child as gone.
_POPENS: dict[int, subprocess.Popen[bytes]] = {}


def is_running(pid: int) -> bool:
    """True when `pid` is alive (a zombie counts as gone)."""
    popen = _POPENS.get(pid)
    if popen is not None:
        return popen.poll() is None
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def exit_code(pid: int) -> int | None:
    """The exit code of a child started here, or None while it runs (or if unknown)."""
    popen = _POPENS.get(pid)
    return None if popen is None else popen.poll()


def wait_for_exit(pid: int, timeout_s: float) -> int | None:
    """Wait for a child started here to exit; return its exit code, None on timeout."""
    popen = _POPENS.get(pid)
    if popen is None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not is_running(pid):
                return None
            time.sleep(0.1)
        return None
    try:
        return popen.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants."""
    try:
        root = psutil.Process(pid)
        return [root.pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.Error:
        return []


def stop_process(pid: int, *, grace_s: float = 10.0) -> None:
    """Stop `pid`, its process group and every descendant: SIGTERM, then SIGKILL after `grace_s`.

    The service flushes its feedback log on SIGTERM, so it gets the grace period first.
    """
    stop_processes([pid], grace_s=grace_s)


def stop_processes(pids: Sequence[int], *, grace_s: float = 10.0) -> None:
    """`stop_process` for several programs at once: all are signalled before any is waited
    for, so they shut down side by side and the grace period is spent at most once."""
    families = {pid: process_tree(pid) for pid in pids}
    for pid, family in families.items():
        _signal_group(pid, signal.SIGTERM)
        for member in family:
            _signal_pid(member, signal.SIGTERM)
    everyone = [member for family in families.values() for member in family]
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(is_running(member) for member in everyone):
        time.sleep(0.1)
    # Descendants that appeared during shutdown are caught by the second look.
    survivors = []
    for pid, family in families.items():
        alive = [member for member in {*family, *process_tree(pid)} if is_running(member)]
        if alive:
            _signal_group(pid, signal.SIGKILL)
            for member in alive:
                _signal_pid(member, signal.SIGKILL)
            survivors += alive
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(is_running(member) for member in survivors):
        time.sleep(0.05)
    for pid in pids:
        popen = _POPENS.pop(pid, None)
        if popen is not None:
            popen.poll()


def _signal_group(pid: int, signum: signal.Signals) -> None:
    # Only groups the platform created: the leader's pid is the group id.
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_pid(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    process: StartedProcess | None = None,
    interval_s: float = 0.2,
) -> None:
    """Poll `condition` until it holds; fail clearly on timeout or when `process` dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and not is_running(process.pid):
            raise ProcessExitedError(
                f"{process.name} exited before {what}; last lines of {process.log_path}:\n"
                f"{tail(process.log_path)}"
            )
        time.sleep(interval_s)
    hint = f"; see {process.log_path}:\n{tail(process.log_path)}" if process else ""
    raise LocalPlatformError(f"timed out after {timeout_s:.0f}s waiting for {what}{hint}")


def tail(path: Path, lines: int = 15) -> str:
    """The last `lines` lines of a log file (empty if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
