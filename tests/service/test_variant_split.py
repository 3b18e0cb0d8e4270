"""Salted assignment (docs/architecture.md, "Online experiments") in a real service over HTTP
whose challenger runs an experiment: its users are exactly that salt's, they stay put, and
/metrics exports the experiment's age. The split itself, in process: test_variant_assignment.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mlflow import MlflowClient
from ranking_features.assignment import experiment_bucket

from recplat.testing.rankers import RegisteredRankers
from recplat.testing.servers import MlflowServer
from recplat.testing.service_process import RankingService

USERS = [f"user-{n}" for n in range(2_000)]
SHARE = 0.3
EXPERIMENT = "exp-svc-v2-20261201T000000Z"
STARTED = datetime.now(UTC) - timedelta(days=3)


@pytest.fixture(scope="module")
def experimenting(
    rankers: RegisteredRankers,
    mlflow_server: MlflowServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RankingService]:
    """A service whose challenger runs experiment `EXPERIMENT`, started three days ago."""
    client = MlflowClient(tracking_uri=mlflow_server.tracking_uri)
    for key, value in {
        "experiment_id": EXPERIMENT,
        "experiment.started_at": STARTED.isoformat(timespec="seconds"),
    }.items():
        client.set_model_version_tag(rankers.model_name, rankers.challenger_version, key, value)
    workdir: Path = tmp_path_factory.mktemp("experiment")
    running = RankingService(
        workdir,
        brand=rankers.model_name.removesuffix("-ranker"),
        lake_uri=f"file://{workdir / 'lake'}",
        tracking_uri=mlflow_server.tracking_uri,
        env={"RECPLAT_CHALLENGER_TRAFFIC": str(SHARE), "RECPLAT_EXPLORATION": "0"},
    ).start()
    try:
        yield running
    finally:
        running.stop()


def test_the_service_splits_users_by_the_experiments_salt(
    experimenting: RankingService, rankers: RegisteredRankers
) -> None:
    users = USERS[:400]
    with experimenting.client() as client:
        answers = {
            u: client.post("/rank", json={"user_id": u, "candidates": ["i-1", "i-2"]}).json()
            for u in users
        }
        again = {
            u: client.post("/rank", json={"user_id": u, "candidates": ["i-3"]}).json()
            for u in users[:50]
        }
    expected = {
        u: "challenger" if experiment_bucket(EXPERIMENT, u) < SHARE else "champion" for u in users
    }
    assert {u: a["model"]["variant"] for u, a in answers.items()} == expected
    assert {u: a["model"]["variant"] for u, a in again.items()} == {
        u: expected[u] for u in users[:50]
    }
    versions = {"champion": rankers.champion_version, "challenger": rankers.challenger_version}
    assert all(a["model"]["version"] == versions[a["model"]["variant"]] for a in answers.values())


def test_metrics_export_the_running_experiments_age(experimenting: RankingService) -> None:
    with experimenting.client() as client:
        text = client.get("/metrics").text
    line = next(x for x in text.splitlines() if x.startswith("recplat_experiment_age_seconds{"))
    age = float(line.rsplit(" ", 1)[1])
    expected = time.time() - STARTED.replace(microsecond=0).timestamp()
    assert abs(age - expected) < 120, (age, expected)
