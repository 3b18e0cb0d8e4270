"""Fixtures of the ranking service tests: a registered champion and challenger, and a running
service for them. The MLflow server is the shared session one (`tests/conftest.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import pytest
from ranking_features import FeatureSnapshot

from tests.conftest import MlflowServer
from tests.service.ranker_models import register_ranker, tiny_snapshot, train_ranker
from tests.service.service_process import RankingService


@dataclass(frozen=True)
class RegisteredRankers:
    model_name: str
    snapshot: FeatureSnapshot
    champion: lgb.Booster
    champion_version: str
    challenger: lgb.Booster
    challenger_version: str


@pytest.fixture(scope="module")
def rankers(mlflow_server: MlflowServer, request: pytest.FixtureRequest) -> RegisteredRankers:
    """A champion and a different challenger under a model name unique to the test module."""
    brand = "svc-" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:12]
    brand = brand.replace("_", "-").rstrip("-")
    model_name = f"{brand}-ranker"
    snapshot = tiny_snapshot()
    champion, challenger = train_ranker(seed=1), train_ranker(seed=2, rounds=12)
    uri = mlflow_server.tracking_uri
    champion_version = register_ranker(uri, model_name, champion, snapshot, ("champion",))
    challenger_version = register_ranker(uri, model_name, challenger, snapshot, ("challenger",))
    return RegisteredRankers(
        model_name, snapshot, champion, champion_version, challenger, challenger_version
    )


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
        brand=rankers.model_name.removesuffix("-ranker"),
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
