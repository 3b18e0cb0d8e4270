"""Salted assignment (docs/architecture.md, "Online experiments"): which users a challenger gets.

Unit tests on `ranking_service.variant_split` with tiny real models, then a real service over
HTTP whose challenger runs experiment `exp-a`: its users are exactly that salt's, they stay put,
the lake logs the experiment, and /metrics exports the experiment's age.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mlflow import MlflowClient
from ranking_features.assignment import experiment_bucket
from ranking_service.model_store import RankingModel, ServedModels
from ranking_service.variant_split import choose_model, experiment_started_at, running_experiment

from recplat.testing.rankers import RegisteredRankers, tiny_snapshot, train_ranker
from recplat.testing.servers import MlflowServer
from recplat.testing.service_process import RankingService

USERS = [f"user-{n}" for n in range(2_000)]
SHARE = 0.3


@pytest.fixture(scope="module")
def models() -> tuple[RankingModel, RankingModel]:
    snapshot = tiny_snapshot()
    champion = RankingModel(
        name="m", version="1", alias="champion", run_id="r1", booster=train_ranker(seed=1),
        snapshot=snapshot, registered_at=0.0,
    )  # fmt: skip
    challenger = dataclasses.replace(
        champion, version="2", alias="challenger", booster=train_ranker(seed=2)
    )
    return champion, challenger


def _challenger_users(served: ServedModels, traffic: float = SHARE) -> set[str]:
    return {u for u in USERS if choose_model(served, u, traffic)[0] == "challenger"}


def _served(models: tuple[RankingModel, RankingModel], experiment_id: str | None) -> ServedModels:
    champion, challenger = models
    return ServedModels(champion, dataclasses.replace(challenger, experiment_id=experiment_id))


def test_the_same_experiment_keeps_every_user_in_their_arm(
    models: tuple[RankingModel, RankingModel],
) -> None:
    served = _served(models, "exp-shop-v2-20261201T000000Z")
    first = _challenger_users(served)
    assert first == _challenger_users(served)
    assert abs(len(first) / len(USERS) - SHARE) < 0.04
    assert first == {
        u for u in USERS if experiment_bucket("exp-shop-v2-20261201T000000Z", u) < SHARE
    }


def test_a_new_experiment_id_reshuffles_the_users(
    models: tuple[RankingModel, RankingModel],
) -> None:
    first = _challenger_users(_served(models, "exp-shop-v2-20261201T000000Z"))
    second = _challenger_users(_served(models, "exp-shop-v3-20261208T000000Z"))
    assert abs(len(second) / len(USERS) - SHARE) < 0.04
    # Independent splits overlap on about SHARE of each arm, not on all of it.
    overlap = len(first & second) / len(first)
    assert abs(overlap - SHARE) < 0.06, overlap


def test_no_experiment_id_means_no_challenger_traffic(
    models: tuple[RankingModel, RankingModel],
) -> None:
    champion, _ = models
    served = _served(models, None)
    assert running_experiment(served, SHARE) is None
    chosen = [choose_model(served, u, SHARE) for u in USERS[:200]]
    assert all(variant == "champion" and model is champion for variant, model in chosen)


def test_no_experiment_runs_without_traffic_or_when_the_challenger_is_the_champion(
    models: tuple[RankingModel, RankingModel],
) -> None:
    champion, _ = models
    served = _served(models, "exp-x")
    assert running_experiment(served, 0.0) is None
    assert _challenger_users(served, 0.0) == set()
    same = ServedModels(champion, dataclasses.replace(champion, experiment_id="exp-x"))
    assert running_experiment(same, SHARE) is None
    assert experiment_started_at(same, SHARE) is None


# ------------------------------------------------------------------- a real service, HTTP
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
