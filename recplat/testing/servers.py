"""Real servers on loopback for tests and benchmarks: free ports, waiting with a deadline,
an MLflow tracking server and Azurite, each a process leading its own group.

`free_port` and `port_is_listening` are the local platform's own (`recplat.local.processes`);
`wait_until` raises `TimeoutError` naming what did not happen, which is what a failing test
should say. Each `start_*` returns the `Popen` with the server's address, so a test can kill
the server mid-test (a registry outage) as well as stop it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from recplat.local.azurite import ACCOUNT_KEY, ACCOUNT_NAME
from recplat.local.azurite import connection_string as azurite_connection_string
from recplat.local.processes import LOOPBACK, free_port, port_is_listening

__all__ = [
    "Azurite",
    "MlflowServer",
    "free_port",
    "http_status",
    "port_is_listening",
    "start_azurite",
    "start_mlflow_server",
    "stop_group",
    "wait_until",
]

MLFLOW_START_TIMEOUT_S = 120.0
AZURITE_START_TIMEOUT_S = 60.0


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds, or raise `TimeoutError` after `timeout` seconds
    naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def http_status(url: str) -> int:
    """The status `url` answers a GET with, or 0 when nothing answers."""
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def stop_group(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group `process` leads, SIGKILL it after `grace` seconds."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(grace)


@dataclass(frozen=True)
class MlflowServer:
    """A running MLflow tracking server with proxied artifacts."""

    port: int
    artifacts_dir: Path

    @property
    def tracking_uri(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def start_mlflow_server(workdir: Path) -> tuple[subprocess.Popen[bytes], MlflowServer]:
    """Start `mlflow server` (SQLite backend, proxied artifacts under `workdir`) and wait
    for /health; the log is `workdir/mlflow.log`."""
    port = free_port()
    artifacts = workdir / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "mlflow.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "mlflow", "server",
                "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
                "--serve-artifacts", "--artifacts-destination", str(artifacts),
                "--host", LOOPBACK, "--port", str(port), "--workers", "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # The GenAI job runner costs a process and CPU on a small machine, for nothing here.
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )  # fmt: skip
    server = MlflowServer(port=port, artifacts_dir=artifacts)
    try:
        wait_until(
            lambda: process.poll() is None and http_status(f"{server.tracking_uri}/health") == 200,
            MLFLOW_START_TIMEOUT_S,
            f"MLflow server answering /health on port {port} (log: {log_path})",
        )
    except TimeoutError:
        stop_group(process)
        raise
    return process, server


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob service, with the emulator's public development account."""

    blob_port: int
    account_name: str = ACCOUNT_NAME
    account_key: str = ACCOUNT_KEY

    @property
    def blob_endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.blob_port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return azurite_connection_string(self.blob_endpoint)


def azurite_executable(repo_root: Path) -> Path | None:
    """Azurite from the project's npm install (`make setup`), else from PATH."""
    installed = repo_root / ".scratch" / "node" / "node_modules" / ".bin" / "azurite"
    if installed.exists():
        return installed
    found = shutil.which("azurite")
    return Path(found) if found else None


def start_azurite(executable: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], Azurite]:
    """Start Azurite (data and log in `workdir`) on free ports; wait until blob listens."""
    port = free_port()
    with (workdir / "azurite.log").open("wb") as log:
        process = subprocess.Popen(
            [
                str(executable), "--silent", "--skipApiVersionCheck", "--loose",
                "--blobHost", LOOPBACK, "--blobPort", str(port),
                "--queuePort", str(free_port()), "--tablePort", str(free_port()),
                "--location", str(workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(
            lambda: port_is_listening(port), AZURITE_START_TIMEOUT_S, f"Azurite on port {port}"
        )
    except TimeoutError:
        stop_group(process)
        raise
    return process, Azurite(blob_port=port)
