"""Azurite, the Blob storage emulator, standing in for the brands' ADLS accounts locally.

Azurite has no ADLS `dfs` API, so the lake is reached with the blob API: adlfs `abfs://`
URIs plus `AZURE_STORAGE_CONNECTION_STRING`, and MLflow artifacts use `wasbs://`. The
emulator's account key is the public development key Microsoft documents for every
Azurite install; it protects nothing and is not a secret.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

from recplat.local.processes import (
    LOOPBACK,
    LocalPlatformError,
    StartedProcess,
    free_port,
    start_process,
    wait_until,
)

ACCOUNT_NAME = "devstoreaccount1"
# The well-known Azurite development key, the same on every machine (see module docstring).
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE_BIN = Path(".scratch/node/node_modules/.bin/azurite-blob")
AZURITE_START_TIMEOUT_S = 30.0
PROCESS_NAME = "azurite"


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob endpoint."""

    process: StartedProcess
    blob_endpoint: str

    @property
    def connection_string(self) -> str:
        return connection_string(self.blob_endpoint)


def connection_string(blob_endpoint: str) -> str:
    """The connection string of the emulator account behind `blob_endpoint`."""
    return (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};BlobEndpoint={blob_endpoint};"
    )


def lake_uri(container: str) -> str:
    """The adlfs URI of a brand's lake container in the emulator."""
    return f"abfs://{container}"


def artifacts_uri(container: str) -> str:
    """The `wasbs://` URI MLflow stores artifacts under, in the emulator's account."""
    return f"wasbs://{container}@{ACCOUNT_NAME}.blob.core.windows.net/artifacts"


def azurite_binary(project_root: Path) -> Path:
    """The Azurite blob server installed by `make setup`; fail clearly if it is missing."""
    binary = project_root / AZURITE_BIN
    if not binary.exists():
        raise LocalPlatformError(
            f"Azurite is not installed ({binary} is missing); run `make setup` "
            "(it needs Node.js 20 and npm), or use `--storage local`"
        )
    return binary


def start_azurite(*, project_root: Path, data_dir: Path, log_dir: Path) -> Azurite:
    """Start Azurite's blob service on a free loopback port, data kept under `data_dir`."""
    binary = azurite_binary(project_root)
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        str(binary),
        "--blobHost",
        LOOPBACK,
        "--blobPort",
        str(port),
        "--location",
        str(data_dir),
        # The SDKs here may be newer than the emulator; the blob API they use is the same.
        "--skipApiVersionCheck",
        "--loose",
    ]
    process = start_process(PROCESS_NAME, argv, log_path=log_dir / "azurite.log", port=port)
    blob_endpoint = f"http://{LOOPBACK}:{port}/{ACCOUNT_NAME}"
    wait_until(
        lambda: _answers(blob_endpoint),
        timeout_s=AZURITE_START_TIMEOUT_S,
        what=f"Azurite to answer on {blob_endpoint}",
        process=process,
    )
    return Azurite(process=process, blob_endpoint=blob_endpoint)


def create_containers(blob_endpoint: str, containers: Iterable[str]) -> None:
    """Create each container (if missing) in the emulator account."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(connection_string(blob_endpoint)) as client:
        for container in containers:
            with contextlib.suppress(ResourceExistsError):
                client.create_container(container)


def _answers(blob_endpoint: str) -> bool:
    # Any HTTP answer (even 400 for the bare account URL) means the server is up.
    try:
        httpx.get(blob_endpoint, timeout=1.0)
    except httpx.HTTPError:
        return False
    return True
