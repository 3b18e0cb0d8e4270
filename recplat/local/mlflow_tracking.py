"""The local platform's one MLflow tracking server: SQLite backend, proxied artifacts.

Artifacts go to a local folder, or to an Azurite blob container as a `wasbs://` URI, and
clients reach them only through the server (`mlflow-artifacts:/`), as on Azure where only
the server's identity may touch the artifact store. So training jobs and services need
nothing but `MLFLOW_TRACKING_URI`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from recplat.local.processes import (
    LOOPBACK,
    StartedProcess,
    ensure_port_free,
    free_port,
    start_process,
    wait_until,
)

# Generous: a fresh SQLite store runs every migration, slow on a busy 2-core machine.
MLFLOW_START_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class MlflowServer:
    """A running tracking server."""

    process: StartedProcess
    tracking_uri: str


def mlflow_is_healthy(tracking_uri: str) -> bool:
    """True when the server at `tracking_uri` answers its health check."""
    try:
        return httpx.get(f"{tracking_uri}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def start_mlflow_server(
    *,
    wait: bool = True,
    data_dir: Path,
    log_dir: Path,
    artifacts_destination: str | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> MlflowServer:
    """Start `mlflow server` on 127.0.0.1 and wait until it is healthy.

    `artifacts_destination` defaults to `<data_dir>/artifacts`; pass a `wasbs://` URI (with
    `AZURE_STORAGE_CONNECTION_STRING` in `env`) to keep artifacts in blob storage. With
    `wait=False` it returns at once (start-up takes a while: other work can overlap it) and
    `wait_mlflow_ready` waits.
    """
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    destination = artifacts_destination or (data_dir / "artifacts").as_uri()
    if port is None:
        port = free_port()
    else:
        ensure_port_free(port, "the MLflow tracking server")
    tracking_uri = f"http://{LOOPBACK}:{port}"
    argv = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{data_dir / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        destination,
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        # One worker: the platform's few clients never need more, and the machine is small.
        "--workers",
        "1",
    ]
    process = start_process(
        "mlflow",
        argv,
        log_path=log_dir / "mlflow.log",
        env={
            "OMP_NUM_THREADS": "1",
            # The GenAI job runner is of no use here and costs a process and CPU on a small box.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            **(env or {}),
        },
        cwd=data_dir,
        port=port,
    )
    server = MlflowServer(process=process, tracking_uri=tracking_uri)
    if wait:
        wait_mlflow_ready(server)
    return server


def wait_mlflow_ready(server: MlflowServer) -> None:
    """Wait until the server answers its health check (fail clearly if it dies first)."""
    wait_until(
        lambda: mlflow_is_healthy(server.tracking_uri),
        timeout_s=MLFLOW_START_TIMEOUT_S,
        what=f"the MLflow tracking server to answer on {server.tracking_uri}",
        process=server.process,
    )
