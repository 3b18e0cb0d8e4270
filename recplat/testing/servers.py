"""Real servers on loopback for tests and benchmarks: free ports, waiting with a deadline,
an MLflow tracking server and Azurite, each a process leading its own group; and an MLflow
registry kept in a folder, for tests that need the registry but not its server.

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
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
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
    "sqlite_registry",
    "start_azurite",
    "start_mlflow_server",
    "stop_group",
    "wait_until",
]

# Generous: a fresh SQLite store runs every migration, slow on a busy 2-core machine.
MLFLOW_START_TIMEOUT_S = 180.0
PORT_ATTEMPTS = 3
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
    for /health; the log is `workdir/mlflow.log`.

    A free port can be taken by another program before the server binds it (tests of other
    suites run on the same machine): the server then exits saying so, and it is started again
    on another port, up to `PORT_ATTEMPTS` times.
    """
    artifacts = workdir / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "mlflow.log"
    for _ in range(PORT_ATTEMPTS):
        process, server = _start_mlflow_once(workdir, artifacts, log_path)
        try:
            wait_until(
                partial(_healthy_or_exited, process, f"{server.tracking_uri}/health"),
                MLFLOW_START_TIMEOUT_S,
                f"MLflow server answering /health on port {server.port} (log: {log_path})",
            )
        except TimeoutError:
            stop_group(process)
            raise
        if process.poll() is None:
            return process, server
        log = log_path.read_text(errors="replace")
        if "address already in use" not in log.rsplit("Starting MLflow", 1)[-1]:
            raise RuntimeError(f"MLflow server exited with {process.returncode}:\n{log[-3000:]}")
    raise RuntimeError(f"MLflow server found no free port in {PORT_ATTEMPTS} attempts")


def _healthy_or_exited(process: subprocess.Popen[bytes], health_url: str) -> bool:
    return process.poll() is not None or http_status(health_url) == 200


def _start_mlflow_once(
    workdir: Path, artifacts: Path, log_path: Path
) -> tuple[subprocess.Popen[bytes], MlflowServer]:
    port = free_port()
    with log_path.open("ab") as log:
        log.write(f"Starting MLflow on port {port}\n".encode())
        log.flush()
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
    return process, MlflowServer(port=port, artifacts_dir=artifacts)


def sqlite_registry(directory: Path) -> str:
    """The tracking URI of an MLflow registry kept in `directory` (a SQLite store, artifacts
    in `directory/artifacts`): the real registry API in process, without a server.

    A new store starts as a copy of an empty one migrated once per MLflow version: running
    MLflow's schema migrations takes 5 to 30 s on this machine, copying the result
    milliseconds.
    """
    directory.mkdir(parents=True, exist_ok=True)
    database = directory.resolve() / "mlflow.db"
    if not database.exists():
        shutil.copyfile(_empty_store(), database)
    return f"sqlite:///{database}"


def _empty_store() -> Path:
    """A migrated, empty SQLite store of this MLflow version (built on first use)."""
    template = Path(tempfile.gettempdir()) / f"recplat-mlflow-{version('mlflow')}-empty.db"
    if not template.exists():
        with tempfile.TemporaryDirectory(dir=template.parent) as scratch:
            database = Path(scratch) / "mlflow.db"
            # Imported here: MLflow takes seconds to import, and most users of this module
            # (every conftest) never build a store.
            from mlflow import MlflowClient

            MlflowClient(tracking_uri=f"sqlite:///{database}").search_experiments()
            # Atomic: a concurrent test run copies the old template or the new, never half.
            database.replace(template)
    return template


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
