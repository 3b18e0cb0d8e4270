"""Tiny real LightGBM rankers and feature snapshots, registered as the training job does.

Registration mirrors the training job (`ranking_training.registry.log_and_register`): the
booster is logged with `mlflow.lightgbm.log_model(name="model")` and the feature snapshot and
spec as the run's `features/` artifacts. It passes `pip_requirements` so MLflow skips its
requirement inference, which takes ~30 s per model on this machine.

The registry is a real MLflow one: a tracking server (`servers.start_mlflow_server`), or, for
in-process tests, a SQLite store in a folder (`servers.sqlite_registry`), which the ranking
service reads through the same `MlflowClient` calls.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
from mlflow import MlflowClient
from ranking_features import FEATURE_NAMES, FeatureSnapshot, feature_spec
from ranking_features.mlflow_names import (
    CHALLENGER,
    CHAMPION,
    MODEL_ARTIFACT,
    SNAPSHOT_ARTIFACT,
    SPEC_ARTIFACT,
    biased_metric_key,
    brand_of_model,
    training_experiment_name,
)

DAY = 86_400.0
AS_OF = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def tiny_snapshot(n_items: int = 60, n_users: int = 30, seed: int = 0) -> FeatureSnapshot:
    """A snapshot over a few days of random traffic: items `i-0..`, users `u-0..`."""
    rng = np.random.default_rng(seed)
    items = [f"i-{n}" for n in range(n_items)]
    categories = [f"c{n % 4}" for n in range(n_items)]
    published = AS_OF - rng.uniform(0, 30, n_items) * DAY
    impression_items = rng.choice(items, size=2_000)
    click_items = rng.choice(items, size=300, p=_popularity(n_items))
    return FeatureSnapshot.from_events(
        as_of=AS_OF,
        window_start=AS_OF - 7 * DAY,
        catalog_item_ids=items,
        catalog_categories=categories,
        catalog_published_at=published,
        impression_item_ids=list(impression_items),
        impression_ts=AS_OF - rng.uniform(0, 6, 2_000) * DAY,
        click_user_ids=[f"u-{n}" for n in rng.integers(0, n_users, 300)],
        click_item_ids=list(click_items),
        click_ts=AS_OF - rng.uniform(0, 6, 300) * DAY,
    )


def _popularity(n: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1)
    return weights / weights.sum()


def train_ranker(
    seed: int = 0, rounds: int = 8, feature_names: tuple[str, ...] = FEATURE_NAMES
) -> lgb.Booster:
    """A small lambdarank model whose relevance depends on CTR, affinity and freshness."""
    rng = np.random.default_rng(seed)
    n_groups, group_size = 60, 10
    x = rng.random((n_groups * group_size, len(feature_names))).astype(np.float32)
    x[:, 0] *= 30.0
    relevance = 2 * x[:, 2] + x[:, 4] - x[:, 0] / 30.0 + rng.normal(0, 0.2, len(x))
    labels = np.zeros(len(x), dtype=np.int32)
    for g in range(n_groups):
        rows = slice(g * group_size, (g + 1) * group_size)
        labels[rows] = np.argsort(np.argsort(relevance[rows])) * 3 // group_size
    data = lgb.Dataset(x, labels, group=[group_size] * n_groups, feature_name=list(feature_names))
    params = {"objective": "lambdarank", "verbose": -1, "num_leaves": 7, "seed": seed}
    return lgb.train(params, data, num_boost_round=rounds)


def register_ranker(
    tracking_uri: str,
    model_name: str,
    booster: lgb.Booster,
    snapshot: FeatureSnapshot,
    aliases: tuple[str, ...] = (),
) -> str:
    """Log and register one version the way the training job does; returns its version."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(
        experiment_id=_experiment(
            tracking_uri, training_experiment_name(brand_of_model(model_name))
        )
    )
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run() as run:
        snapshot_file, spec_file = Path(tmp) / SNAPSHOT_ARTIFACT, Path(tmp) / SPEC_ARTIFACT
        snapshot_file.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save(snapshot_file)
        spec_file.write_text(json.dumps(feature_spec()), encoding="utf-8")
        mlflow.log_artifacts(tmp)
        mlflow.log_metrics(
            {
                biased_metric_key("model", "ndcg@10"): 0.61,
                biased_metric_key("popularity", "ndcg@10"): 0.42,
                "rows.train": 600,
            }
        )
        info = mlflow.lightgbm.log_model(
            booster,
            name=MODEL_ARTIFACT,
            pip_requirements=["lightgbm"],
            registered_model_name=model_name,
            await_registration_for=60,
        )
    version = str(info.registered_model_version)
    client = MlflowClient(tracking_uri=tracking_uri)
    tags = {"brand": brand_of_model(model_name), "data_from": "2025-12-25"}
    for key, value in {**tags, "data_to": "2026-01-01", "run": run.info.run_id}.items():
        client.set_model_version_tag(model_name, version, key, value)
    for alias in aliases:
        client.set_registered_model_alias(model_name, alias, version)
    return version


def register_broken_version(tracking_uri: str, model_name: str, snapshot: FeatureSnapshot) -> str:
    """A version whose `model.lgb` is not a LightGBM model (e.g. a truncated upload)."""
    mlflow.set_tracking_uri(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run() as run:
        model_dir = Path(tmp) / "model"
        model_dir.mkdir()
        (model_dir / "model.lgb").write_text("tree\nversion=v4\nnum_class=", encoding="utf-8")
        (model_dir / "MLmodel").write_text("flavors: {}\n", encoding="utf-8")
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
        features = Path(tmp) / "features"
        features.mkdir()
        snapshot.save(features / "snapshot.json")
        mlflow.log_artifacts(str(features), artifact_path="features")
    client = MlflowClient(tracking_uri=tracking_uri)
    version = client.create_model_version(
        model_name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    )
    return str(version.version)


def set_alias(tracking_uri: str, model_name: str, alias: str, version: str) -> None:
    MlflowClient(tracking_uri=tracking_uri).set_registered_model_alias(model_name, alias, version)


def _experiment(tracking_uri: str, name: str) -> str:
    """The id of experiment `name`, created if missing. A SQLite store has no server to proxy
    artifacts, so its experiments keep them beside the database, not in the working folder."""
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri.removeprefix("sqlite:///"))
        location = (database.parent / "artifacts").as_uri()
    return str(client.create_experiment(name, artifact_location=location))


@dataclass(frozen=True)
class RegisteredRankers:
    """A champion and a different challenger of one registered model, and their snapshot."""

    model_name: str
    snapshot: FeatureSnapshot
    champion: lgb.Booster
    champion_version: str
    challenger: lgb.Booster
    challenger_version: str

    @property
    def brand(self) -> str:
        return brand_of_model(self.model_name)


def register_champion_and_challenger(tracking_uri: str, model_name: str) -> RegisteredRankers:
    """Two tiny rankers under `model_name`, aliased `champion` and `challenger` (no experiment
    tag: the challenger takes no traffic until a test tags it)."""
    snapshot = tiny_snapshot()
    champion, challenger = train_ranker(seed=1), train_ranker(seed=2, rounds=12)
    champion_version = register_ranker(tracking_uri, model_name, champion, snapshot, (CHAMPION,))
    challenger_version = register_ranker(
        tracking_uri, model_name, challenger, snapshot, (CHALLENGER,)
    )
    return RegisteredRankers(
        model_name, snapshot, champion, champion_version, challenger, challenger_version
    )
