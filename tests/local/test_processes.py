"""Process management of the local platform: no orphans, clear port and tool errors."""

from __future__ import annotations

import socket
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from recplat.local.processes import (
    LocalPlatformError,
    PortInUseError,
    ProcessExitedError,
    ensure_port_free,
    is_same_process,
    process_tree,
    start_process,
    stop_process,
    stop_processes,
    wait_until,
)

pytestmark = pytest.mark.fast

# A parent that starts two grandchildren, one of which ignores SIGTERM: the worst case
# for orphans (like a server with workers that hang on shutdown).
FAMILY = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    subprocess.Popen([sys.executable, "-c", stubborn])
    print("started", flush=True)
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_stop_process_leaves_no_orphans(tmp_path: Path) -> None:
    process = start_process(
        "family", [sys.executable, "-c", FAMILY], log_path=tmp_path / "family.log"
    )
    wait_until(lambda: len(process_tree(process.pid)) == 3, timeout_s=30, what="3 processes")
    family = process_tree(process.pid)

    stop_process(process.pid, grace_s=1.0)

    assert [pid for pid in family if _alive(pid)] == []
    assert "started" in (tmp_path / "family.log").read_text()


def test_stop_processes_stops_several_in_one_grace_period(tmp_path: Path) -> None:
    processes = [
        start_process(name, [sys.executable, "-c", FAMILY], log_path=tmp_path / f"{name}.log")
        for name in ("one", "two")
    ]
    for pid in [process.pid for process in processes]:
        wait_until(lambda: len(process_tree(pid)) == 3, timeout_s=30, what="3 processes")  # noqa: B023
    families = [pid for process in processes for pid in process_tree(process.pid)]

    started = time.monotonic()
    stop_processes([process.pid for process in processes], grace_s=3.0)

    # Both stubborn grandchildren wait out one grace period side by side (one each: >= 6 s).
    assert time.monotonic() - started < 5.0
    assert [pid for pid in families if _alive(pid)] == []


def test_is_same_process_rejects_a_reused_pid(tmp_path: Path) -> None:
    process = start_process(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], log_path=tmp_path / "s"
    )
    try:
        assert is_same_process(process.pid, process.create_time)
        assert not is_same_process(process.pid, process.create_time - 3600)
    finally:
        stop_process(process.pid)
    assert not is_same_process(process.pid, process.create_time)


def test_port_in_use_is_named_with_a_fix() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUseError) as error:
            ensure_port_free(port, "the MLflow tracking server")
    assert str(error.value).startswith(
        f"port {port} on 127.0.0.1 is already in use, so the MLflow tracking server cannot start"
    )
    assert "recplat local down" in str(error.value)


def test_missing_program_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LocalPlatformError) as error:
        start_process("azurite", ["/nonexistent/azurite"], log_path=tmp_path / "a.log")
    assert str(error.value).startswith("cannot start azurite: program '/nonexistent/azurite'")


def test_a_child_dying_before_ready_shows_its_log(tmp_path: Path) -> None:
    process = start_process(
        "broken",
        [sys.executable, "-c", "import sys; print('bad config: RECPLAT_X'); sys.exit(3)"],
        log_path=tmp_path / "broken.log",
    )
    with pytest.raises(ProcessExitedError) as error:
        wait_until(lambda: False, timeout_s=30, what="broken to listen", process=process)
    assert "broken exited before broken to listen" in str(error.value)
    assert "bad config: RECPLAT_X" in str(error.value)
