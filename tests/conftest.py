"""Session fixtures: the real services tests talk to (Azurite, an MLflow tracking server, an
MLflow registry in a folder).

Each is a real process on a free loopback port, started once per session and stopped at the
end; start-up waits on a readiness condition with a deadline. The code that starts them is in
`recplat.testing.servers`, shared with the benchmarks; this file only holds fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recplat.testing.servers import (
    Azurite,
    MlflowServer,
    azurite_executable,
    sqlite_registry,
    start_azurite,
    start_mlflow_server,
    stop_group,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite (blob API used) from the project's npm install, on a free port."""
    executable = azurite_executable(REPO_ROOT)
    if executable is None:
        pytest.fail("Azurite is not installed: run `make setup` (scripts/bootstrap.sh) first")
    process, running = start_azurite(executable, tmp_path_factory.mktemp("azurite"))
    try:
        yield running
    finally:
        stop_group(process)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One real MLflow tracking server for the whole session."""
    process, server = start_mlflow_server(tmp_path_factory.mktemp("mlflow"))
    try:
        yield server
    finally:
        stop_group(process)


@pytest.fixture(scope="session")
def local_registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tracking URI of a real MLflow registry kept in a folder (SQLite), used in process:
    for tests that need a registry but not the tracking server's HTTP API."""
    return sqlite_registry(tmp_path_factory.mktemp("registry"))
