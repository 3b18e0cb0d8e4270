"""Acceptance: the counterfactual gate on a world lake, with a real MLflow server and real
LightGBM, checked against the world's truth (issue 14, item 2).

Phase 1 (days 0-5) is served by a policy that knows nothing; v1 is trained on it with crippled
parameters and made champion. Phase 2 (days 6-11) is served by v1, as the service serves it
(its own snapshot, exploring 20 % of requests over its top 2k). Then:
- a properly trained retrain (v2) is better under the world's truth, and passes the gate as
  challenger; the champion alias does not move;
- with v2 made champion (as the online experiment would), a crippled retrain (v3) is worse
  under the truth and is rejected: tagged, no alias.
Both decisions are asserted to agree with the truth, so either test fails if the gate's
decision goes the other way. The truth is exact (the cascade's click probabilities) for both
models served with the same snapshot on the same fresh requests of the gate day.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient
from ranking_features import FeatureSnapshot
from ranking_training.__main__ import main

from recplat.simulation.lake import TrafficSettings, WorldLake, model_scorer, random_scorer
from recplat.simulation.truth import World, WorldParams

pytestmark = pytest.mark.slow

CRIPPLED = ("--num-leaves", "2", "--num-boost-round", "1")
PHASE_1, PHASE_2 = range(0, 6), range(6, 12)
GATE_DAY = 11


@dataclass(frozen=True)
class WorldBrand:
    lake: WorldLake
    lake_uri: str
    tracking_uri: str
    brand: str

    @property
    def model(self) -> str:
        return f"{self.brand}-ranker"

    def train(self, last_day: int, *extra: str) -> int:
        """`ranking-train` on days 0..last_day, run 7 hours after that day ended."""
        run_at = datetime.fromtimestamp(self.lake.day_start(last_day + 1), UTC) + timedelta(hours=7)
        return main(
            [
                "--brand", self.brand,
                "--lake-uri", self.lake_uri,
                "--tracking-uri", self.tracking_uri,
                "--from", str(self.lake.date_of(0)),
                "--to", str(self.lake.date_of(last_day)),
                "--run-at", run_at.isoformat(),
                "--num-threads", "1",
                *extra,
            ]
        )  # fmt: skip

    def served(self, version: str, tmp_path: Path) -> tuple[Any, FeatureSnapshot]:
        """A version's booster and snapshot, as the service downloads them."""
        mlflow.set_tracking_uri(self.tracking_uri)
        run_id = MlflowClient().get_model_version(self.model, version).run_id
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path="features/snapshot.json",
            dst_path=str(tmp_path / f"v{version}"),
        )
        booster = mlflow.lightgbm.load_model(f"models:/{self.model}/{version}")
        return booster, FeatureSnapshot.load(path)

    def truth(self, version: str, snapshot: FeatureSnapshot, tmp_path: Path) -> float:
        """Exact clicks per request of serving `version` on the gate day's requests."""
        booster, _ = self.served(version, tmp_path)
        scorer = model_scorer(booster, snapshot)
        return self.lake.true_reward(scorer, range(GATE_DAY, GATE_DAY + 1), 4000, seed=99)


@pytest.fixture(scope="module")
def world_brand(
    mlflow_server: Any, tmp_path_factory: pytest.TempPathFactory, brand_name: Callable[[], str]
) -> WorldBrand:
    """The lake after both phases, v1 (crippled, trained on phase 1) as champion."""
    world = World.build(
        WorldParams(users=3000, items=600, days=12, seed=0, patience=0.6, attraction_bias=-3.0)
    )
    lake = WorldLake(world, TrafficSettings(brand="world", requests_per_day=6000))
    root = tmp_path_factory.mktemp("world-lake")
    brand = WorldBrand(lake, root.as_uri(), mlflow_server.tracking_uri, brand_name())
    lake.play(random_scorer(1), PHASE_1, brand.lake_uri, seed=2)
    assert brand.train(PHASE_1[-1], *CRIPPLED) == 0
    client = MlflowClient(brand.tracking_uri)
    # Whatever the gate said of the first model, it serves phase 2 (an operator's choice).
    client.set_registered_model_alias(brand.model, "champion", "1")
    booster, snapshot = brand.served("1", tmp_path_factory.mktemp("v1"))
    lake.play(model_scorer(booster, snapshot), PHASE_2, brand.lake_uri, seed=3)
    return brand


@pytest.fixture(scope="module")
def brand_name() -> Callable[[], str]:
    import uuid

    return lambda: f"w{uuid.uuid4().hex[:8]}"


def _report(client: MlflowClient, model: str, version: str) -> dict[str, Any]:
    mv = client.get_model_version(model, version)
    metrics = client.get_run(str(mv.run_id)).data.metrics
    return {"tags": dict(mv.tags), "metrics": metrics}


def test_a_retrain_better_under_the_truth_passes_as_challenger(
    world_brand: WorldBrand, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world_brand.train(PHASE_2[-1]) == 0
    client = MlflowClient(world_brand.tracking_uri)
    model = world_brand.model
    report = _report(client, model, "2")
    tags, metrics = report["tags"], report["metrics"]

    _, newest = world_brand.served("2", tmp_path)
    truth_new = world_brand.truth("2", newest, tmp_path)
    truth_champion = world_brand.truth("1", newest, tmp_path)
    new_ndcg, champion_ndcg = (
        metrics["biased.model.ndcg_at_10"],
        metrics["biased.champion.ndcg_at_10"],
    )
    with capsys.disabled():
        print(
            f"\n[better retrain] old gate (NDCG@10 on all gate-day traffic, min_gain 0.005): "
            f"new {new_ndcg:.4f} vs champion {champion_ndcg:.4f} -> "
            f"{'promote' if new_ndcg >= champion_ndcg + 0.005 else 'hold'}"
            f"\n[better retrain] counterfactual: {tags['gate.reason']}"
            f"\n[better retrain] IPS new {metrics['ope.new.ips']:.4f} champion "
            f"{metrics['ope.champion.ips']:.4f}; new - champion IPS "
            f"[{metrics['ope.new_minus_champion.ips.low']:+.4f}, "
            f"{metrics['ope.new_minus_champion.ips.high']:+.4f}]"
            f"\n[better retrain] truth (clicks/request): new {truth_new:.4f}, "
            f"champion {truth_champion:.4f}; gate {tags['gate']}"
        )
    # The truth says better, and the gate agrees: challenger, champion untouched.
    assert truth_new > truth_champion
    assert tags["gate"] == "challenger", tags["gate.reason"]
    aliases = client.get_registered_model(model).aliases
    assert aliases == {"champion": "1", "challenger": "2"}
    assert float(tags["ope.new_minus_champion.snips.low"]) > -0.01 * float(
        tags["ope.champion.snips"]
    )


def test_a_retrain_worse_under_the_truth_is_rejected_and_never_aliased(
    world_brand: WorldBrand, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient(world_brand.tracking_uri)
    model = world_brand.model
    versions = client.search_model_versions(f"name = '{model}'")
    strong = max(versions, key=lambda v: int(v.version))
    if strong.version == "1":  # the better-retrain test did not run first
        assert world_brand.train(PHASE_2[-1]) == 0
        strong = client.get_model_version(model, "2")
    # As the online experiment would: the strong model now serves.
    client.set_registered_model_alias(model, "champion", strong.version)
    client.delete_registered_model_alias(model, "challenger")

    assert world_brand.train(PHASE_2[-1], *CRIPPLED, "--learning-rate", "0.2") == 0
    crippled = str(int(strong.version) + 1)
    report = _report(client, model, crippled)
    tags = report["tags"]
    _, newest = world_brand.served(strong.version, tmp_path)
    truth_new = world_brand.truth(crippled, newest, tmp_path)
    truth_champion = world_brand.truth(strong.version, newest, tmp_path)
    with capsys.disabled():
        print(
            f"\n[worse retrain] counterfactual: {tags['gate.reason']}"
            f"\n[worse retrain] truth (clicks/request): new {truth_new:.4f}, "
            f"champion {truth_champion:.4f}; gate {tags['gate']}"
        )
    assert truth_new < truth_champion
    assert tags["gate"] == "rejected", tags["gate.reason"]
    assert client.get_registered_model(model).aliases == {"champion": strong.version}
    decision = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=client.get_model_version(model, crippled).run_id,
                artifact_path="evaluation/decision.json",
                dst_path=str(tmp_path / "decision"),
            )
        ).read_text()
    )
    assert decision["gate"] == "rejected"
