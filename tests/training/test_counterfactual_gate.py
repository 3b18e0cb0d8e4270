"""Acceptance: the counterfactual gate on a world lake, with a real MLflow server and real
LightGBM, against the old plain-NDCG gate and the world's truth (issue 14, item 2).

The lake is logged as the real service logs (`recplat.simulation.lake`): the serving model
scores with the frozen snapshot of its own training run and the session the client sends (its
user's latest clicks, newest last), exploring 20 % of requests over its top 2k; ties keep the
client's candidate order. The world's taste is mostly personal (latent factors), clicks follow a
position-biased cascade (after a skip, the next item is examined with probability 0.6).

- Days 0-5: a policy that knows nothing serves. v1, trained on them with crippled parameters,
  serves days 6-10.
- v2, a small model (3 leaves x 5 trees) trained on days 0-10 the night after day 10, becomes
  champion and serves day 11, the gate day, with eight times the traffic (so the explore slice
  is large enough for intervals that can separate the models).
- A full retrain on days 0-11 (v3) is better under the truth. **The old gate** (bc8e00b:
  `evaluate.py` + `registry.py::decide`: NDCG@10 of the new model and of the champion on the
  newest day's traffic; promote when new > popularity and new >= champion + min_gain) holds it.
  What makes it fail: the day's clicks were drawn under v2's own order, and the cascade examines
  the top positions far more; v2 rescored on those rows reproduces that order (its snapshot is
  as of the day's start, exactly the day-start snapshot the evaluation uses, with the same
  sessions), so it collects the clicks its own order caused. The counterfactual gate judges on
  the explore requests, where the order was randomised with known propensities, and makes v3
  challenger.
- With v3 made champion (as the online experiment would), a crippled retrain (v4) is worse under
  the truth and is rejected: tagged, no alias.

Truth: exact expected clicks of each of 4000 fresh requests of day 12 (the day a retrain would
start serving), each version served with its own snapshot and the client's sessions, paired;
its difference must exceed 3 standard errors, so a decision is checked against a truth that is
not noise. Every decision is asserted, so the test fails if one goes the other way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from ranking_features import FeatureSnapshot

from recplat.simulation.lake import WorldLake
from recplat.simulation.traffic import (
    ClickHistory,
    TrafficSettings,
    model_scorer,
    random_scorer,
)
from recplat.simulation.truth import World, WorldParams

pytestmark = pytest.mark.slow

CRIPPLED = ("--num-leaves", "2", "--num-boost-round", "1")
SMALL = ("--num-leaves", "3", "--num-boost-round", "5")
PHASE_1, PHASE_2, GATE_DAY, TRUTH_DAY = range(0, 6), range(6, 11), 11, 12
GATE_DAY_TRAFFIC = 8
# The old gate's default (bc8e00b: ranking_training.config min_gain; brands used 0.002-0.01).
OLD_MIN_GAIN = 0.005
# A truth difference counts when it exceeds this many paired standard errors.
TRUTH_SE = 3.0


@dataclass(frozen=True)
class WorldBrand:
    lake: WorldLake
    lake_uri: str
    tracking_uri: str
    brand: str
    clicks: ClickHistory

    @property
    def model(self) -> str:
        return f"{self.brand}-ranker"

    def train(self, last_day: int, *extra: str) -> int:
        """`ranking-train` on days 0..last_day, run 7 hours after that day ended."""
        from ranking_training.__main__ import main

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

    def truth(self, version: str, tmp_path: Path) -> np.ndarray:
        """Exact expected clicks of each of the truth day's requests served by `version`."""
        scorer = model_scorer(*self.served(version, tmp_path))
        return self.lake.true_rewards(
            scorer, range(TRUTH_DAY, TRUTH_DAY + 1), 4000, seed=99, clicks=self.clicks
        )


@dataclass(frozen=True)
class OldGate:
    """bc8e00b's `registry.decide` on the run's biased NDCG@10 (the same computation its
    `evaluate.py` ran: the model, popularity and the champion on the newest day's rows)."""

    new: float
    champion: float
    popularity: float
    min_gain: float = OLD_MIN_GAIN

    @property
    def promotes(self) -> bool:
        return self.new > self.popularity and self.new >= self.champion + self.min_gain

    def line(self) -> str:
        verdict = "promote" if self.promotes else "hold"
        return (
            f"old gate NDCG@10 on the gate day's traffic: new {self.new:.4f} vs champion "
            f"{self.champion:.4f} + min_gain {self.min_gain} (popularity {self.popularity:.4f})"
            f" -> {verdict}"
        )


def _paired(new: np.ndarray, champion: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the per-request difference."""
    diff = new - champion
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))


def _interval(metrics: dict[str, float], name: str) -> str:
    return f"{metrics[name]:+.4f} [{metrics[name + '.low']:+.4f}, {metrics[name + '.high']:+.4f}]"


def _report(brand: WorldBrand, version: str) -> tuple[dict[str, str], dict[str, float]]:
    client = MlflowClient(brand.tracking_uri)
    mv = client.get_model_version(brand.model, version)
    return dict(mv.tags), client.get_run(str(mv.run_id)).data.metrics


def _print(label: str, old: OldGate, metrics: dict[str, float], truth: str, gate: str) -> None:
    print(
        f"\n[{label}] {old.line()}"
        f"\n[{label}] counterfactual gate: PBM new {metrics['ope.new.pbm']:.4f} champion "
        f"{metrics['ope.champion.pbm']:.4f} popularity {metrics['ope.popularity.pbm']:.4f}; "
        f"new - champion PBM {_interval(metrics, 'ope.new_minus_champion.pbm')}, "
        f"SNIPS {_interval(metrics, 'ope.new_minus_champion.snips')}, "
        f"IPS {_interval(metrics, 'ope.new_minus_champion.ips')}; new - popularity PBM "
        f"{_interval(metrics, 'ope.new_minus_popularity.pbm')} -> {gate}"
        f"\n[{label}] truth on day {TRUTH_DAY} (clicks/request): {truth}"
    )


@pytest.fixture(scope="module")
def world_brand(
    mlflow_server: Any, tmp_path_factory: pytest.TempPathFactory, brand_name: Callable[[], str]
) -> WorldBrand:
    """The lake through the gate day; v2 (small, trained on days 0-10) champion."""
    world = World.build(
        WorldParams(
            users=3000,
            items=600,
            days=TRUTH_DAY + 1,
            seed=0,
            patience=0.6,
            attraction_bias=-3.0,
            taste_scale=2.0,
            quality_scale=0.5,
        )
    )
    lake = WorldLake(world, TrafficSettings(brand="world", requests_per_day=6000))
    root = tmp_path_factory.mktemp("world-lake")
    brand = WorldBrand(
        lake, root.as_uri(), mlflow_server.tracking_uri, brand_name(), ClickHistory()
    )
    client = MlflowClient(brand.tracking_uri)
    lake.play(random_scorer(1), PHASE_1, brand.lake_uri, seed=2, clicks=brand.clicks)
    for version, (days, params) in enumerate(
        ((PHASE_2, CRIPPLED), (range(GATE_DAY, GATE_DAY + 1), SMALL)), 1
    ):
        assert brand.train(days[0] - 1, *params) == 0
        # Whatever the gate said, it serves next (an operator's or an experiment's choice).
        client.set_registered_model_alias(brand.model, "champion", str(version))
        serving = brand.served(str(version), tmp_path_factory.mktemp(f"v{version}"))
        traffic = lake.traffic.requests_per_day * (GATE_DAY_TRAFFIC if version == 2 else 1)
        replace(lake, traffic=replace(lake.traffic, requests_per_day=traffic)).play(
            model_scorer(*serving),
            days,
            brand.lake_uri,
            seed=2 + version,
            clicks=brand.clicks,
            model_version=str(version),
        )
    return brand


@pytest.fixture(scope="module")
def brand_name() -> Callable[[], str]:
    import uuid

    return lambda: f"w{uuid.uuid4().hex[:8]}"


def test_a_retrain_better_under_the_truth_is_held_by_the_old_gate_and_passes_as_challenger(
    world_brand: WorldBrand, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world_brand.train(GATE_DAY) == 0
    tags, metrics = _report(world_brand, "3")
    old = OldGate(
        new=metrics["biased.model.ndcg_at_10"],
        champion=metrics["biased.champion.ndcg_at_10"],
        popularity=metrics["biased.popularity.ndcg_at_10"],
    )
    gain, se = _paired(world_brand.truth("3", tmp_path), world_brand.truth("2", tmp_path))
    with capsys.disabled():
        _print(
            "better retrain",
            old,
            metrics,
            f"new - champion {gain:+.4f} (se {se:.4f})",
            tags["gate"],
        )

    assert gain > TRUTH_SE * se, "the world's truth must say v2 is better than v1"
    assert not old.promotes, f"the old gate was expected to hold v2: {old.line()}"
    assert tags["gate"] == "challenger", tags["gate.reason"]
    aliases = MlflowClient(world_brand.tracking_uri).get_registered_model(world_brand.model).aliases
    assert aliases == {"champion": "2", "challenger": "3"}


def test_a_retrain_worse_under_the_truth_is_rejected_and_never_aliased(
    world_brand: WorldBrand, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient(world_brand.tracking_uri)
    model = world_brand.model
    versions = client.search_model_versions(f"name = '{model}'")
    strong = max(versions, key=lambda v: int(v.version))
    if strong.version == "2":  # the better-retrain test did not run first
        assert world_brand.train(GATE_DAY) == 0
        strong = client.get_model_version(model, "3")
    # As the online experiment would: the strong model now serves.
    client.set_registered_model_alias(model, "champion", strong.version)
    if "challenger" in client.get_registered_model(model).aliases:
        client.delete_registered_model_alias(model, "challenger")

    assert world_brand.train(GATE_DAY, *CRIPPLED, "--learning-rate", "0.2") == 0
    crippled = str(int(strong.version) + 1)
    tags, metrics = _report(world_brand, crippled)
    old = OldGate(
        new=metrics["biased.model.ndcg_at_10"],
        champion=metrics["biased.champion.ndcg_at_10"],
        popularity=metrics["biased.popularity.ndcg_at_10"],
    )
    loss, se = _paired(
        world_brand.truth(crippled, tmp_path), world_brand.truth(strong.version, tmp_path)
    )
    with capsys.disabled():
        _print(
            "worse retrain",
            old,
            metrics,
            f"new - champion {loss:+.4f} (se {se:.4f})",
            tags["gate"],
        )

    assert loss < -TRUTH_SE * se, "the world's truth must say the crippled retrain is worse"
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
