"""Shared fixtures: the real services tests talk to (Azurite, an MLflow tracking server).

Each is a real process on a free loopback port, started once per session and
stopped at the end; start-up waits on a readiness condition with a deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / ".scratch" / "node" / "node_modules" / ".bin" / "azurite"
# Azurite's well-known development account; it is public and only valid against Azurite.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds, or fail after ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
            return 200 <= response.status < 500
    except OSError:
        return False


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(grace)


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob service."""

    blob_port: int
    account_name: str = AZURITE_ACCOUNT
    account_key: str = AZURITE_KEY

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={self.account_name};AccountKey={self.account_key};"
            f"BlobEndpoint={self.blob_endpoint};"
        )


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite (blob API only) from the project's npm install, on a free port."""
    executable = AZURITE_BIN if AZURITE_BIN.exists() else shutil.which("azurite")
    if executable is None:
        pytest.fail("Azurite is not installed: run `make setup` (scripts/bootstrap.sh) first")
    workdir = tmp_path_factory.mktemp("azurite")
    port = free_port()
    log = (workdir / "azurite.log").open("wb")
    process = subprocess.Popen(
        [
            str(executable),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--queuePort",
            str(free_port()),
            "--tablePort",
            str(free_port()),
            "--location",
            str(workdir),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: _port_open(port), 60, f"Azurite listening on port {port}")
        yield Azurite(blob_port=port)
    finally:
        _stop(process)
        log.close()


@dataclass(frozen=True)
class MlflowServer:
    """A running MLflow tracking server with proxied artifacts."""

    port: int
    artifacts_dir: Path

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_mlflow_server(workdir: Path) -> tuple[subprocess.Popen[bytes], MlflowServer]:
    """Start ``mlflow server`` (SQLite backend, proxied artifacts) and wait for /health."""
    port = free_port()
    artifacts = workdir / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    log = (workdir / "mlflow.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{workdir / 'mlflow.db'}",
            "--serve-artifacts",
            "--artifacts-destination",
            str(artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    server = MlflowServer(port=port, artifacts_dir=artifacts)
    try:
        wait_until(
            lambda: process.poll() is None and _http_ok(f"{server.tracking_uri}/health"),
            120,
            f"MLflow server answering /health on port {port} (log: {workdir / 'mlflow.log'})",
        )
    except TimeoutError:
        _stop(process)
        raise
    return process, server


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One real MLflow tracking server for the whole session."""
    process, server = start_mlflow_server(tmp_path_factory.mktemp("mlflow"))
    try:
        yield server
    finally:
        _stop(process)
