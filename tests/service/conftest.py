"""Fixtures of the ranking service tests: a registered champion and challenger, and a running
service for them; the same pair in the in-process registry (`local_rankers`) for the tests that
run the app in process. The registries are the shared session ones (`tests/conftest.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recplat.testing.rankers import RegisteredRankers, register_champion_and_challenger
from recplat.testing.servers import MlflowServer
from recplat.testing.service_process import RankingService


@pytest.fixture(scope="module")
def rankers(mlflow_server: MlflowServer, request: pytest.FixtureRequest) -> RegisteredRankers:
    """A champion and a different challenger under a model name unique to the test module."""
    brand = "svc-" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:12]
    brand = brand.replace("_", "-").rstrip("-")
    return register_champion_and_challenger(mlflow_server.tracking_uri, f"{brand}-ranker")


@pytest.fixture(scope="module")
def local_rankers(local_registry: str, request: pytest.FixtureRequest) -> RegisteredRankers:
    """`rankers`, registered in the in-process SQLite registry instead of the server."""
    brand = "ip-" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:12]
    brand = brand.replace("_", "-").rstrip("-")
    return register_champion_and_challenger(local_registry, f"{brand}-ranker")


@pytest.fixture(scope="module")
def service(
    rankers: RegisteredRankers,
    mlflow_server: MlflowServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RankingService]:
    """The service of that brand, 30 % challenger traffic, max 100 candidates, no exploration
    (every list is the model's order; test_exploration.py explores)."""
    workdir: Path = tmp_path_factory.mktemp("service")
    running = RankingService(
        workdir,
        brand=rankers.brand,
        lake_uri=f"file://{workdir / 'lake'}",
        tracking_uri=mlflow_server.tracking_uri,
        env={
            "RECPLAT_CHALLENGER_TRAFFIC": "0.3",
            "RECPLAT_EXPLORATION": "0",
            "RECPLAT_MAX_CANDIDATES": "100",
            "RECPLAT_MAX_BODY_BYTES": "65536",
        },
    ).start()
    try:
        yield running
    finally:
        running.stop()
