"""End to end against a real MLflow server: train, register, gate, rerun, and what the service
downloads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from ranking_features import FeatureSnapshot, build_features
from ranking_training.__main__ import main

from tests.training.lake_window import END, FIRST

pytestmark = pytest.mark.slow


def _train(lake: Path, tracking_uri: str, brand: str, *extra: str) -> int:
    return main(
        [
            "--brand", brand,
            "--lake-uri", lake.as_uri(),
            "--tracking-uri", tracking_uri,
            "--from", str(FIRST),
            "--to", str(END),
            "--num-threads", "1",
            *extra,
        ]
    )  # fmt: skip


def test_first_model_becomes_champion_then_a_retrain_without_exploration_is_not_aliased(
    clean_lake: Path,
    mlflow_server: object,
    brand_name: Callable[[], str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    tracking_uri = mlflow_server.tracking_uri  # type: ignore[attr-defined]
    brand = brand_name()
    model = f"{brand}-ranker"
    client = MlflowClient(tracking_uri)

    # The synthetic lake has no explore rows; with no champion, nothing serves, so the biased
    # NDCG against popularity decides the first champion (docs/architecture.md).
    assert _train(clean_lake, tracking_uri, brand) == 0
    out = capsys.readouterr().out
    assert f"registered {model} v1; gate champion: 0 explore requests in the gate window" in out
    assert "no champion yet, so the biased ndcg@10 on all gate-window traffic decides" in out
    assert client.get_model_version_by_alias(model, "champion").version == "1"
    assert not client.get_registered_model(model).aliases.get("challenger")
    first = client.get_model_version(model, "1")
    assert (first.tags["gate"], first.tags["gate.basis"]) == ("champion", "biased_ndcg")
    assert {k: first.tags[k] for k in ("brand", "data_from", "data_to")} == {
        "brand": brand,
        "data_from": str(FIRST),
        "data_to": str(END),
    }
    assert first.tags["env"] == "dev" and first.tags["git_sha"]
    assert first.run_id is not None
    run = client.get_run(first.run_id)
    experiment = client.get_experiment_by_name(f"recplat/{brand}")
    assert experiment is not None and run.info.experiment_id == experiment.experiment_id
    # The model beats the popularity baseline on the gate day (biased: on logged traffic). The
    # margin is smaller than when early stopping tuned on the day it was judged on.
    metrics = run.data.metrics
    assert metrics["biased.model.ndcg_at_10"] > metrics["biased.popularity.ndcg_at_10"]
    assert metrics["gate.exploration_requests"] == 0
    # Feedback matching no impression would be counted here (docs/architecture.md).
    assert run.data.metrics["rows.unmatched_feedback"] == 0
    artifacts = {a.path for a in client.list_artifacts(first.run_id, "evaluation")}
    assert {"evaluation/evaluation.json", "evaluation/evaluation.png"} <= artifacts

    # What the service does: native booster + snapshot, no pandas; same scores as MLflow's.
    mlflow.set_tracking_uri(tracking_uri)
    model_dir = Path(
        mlflow.artifacts.download_artifacts(
            f"models:/{model}@champion", dst_path=str(tmp_path / "m")
        )
    )
    booster = lgb.Booster(model_file=str(model_dir / "model.lgb"))
    snapshot_path = mlflow.artifacts.download_artifacts(
        run_id=first.run_id, artifact_path="features/snapshot.json", dst_path=str(tmp_path / "f")
    )
    snapshot = FeatureSnapshot.load(snapshot_path)
    features = build_features(snapshot, snapshot.user_ids[0], snapshot.item_ids[:20])
    logged = mlflow.lightgbm.load_model(f"models:/{model}/1")
    np.testing.assert_allclose(booster.predict(features), logged.predict(features))

    # A retrain with a champion serving but no exploration data: its own outcome, registered
    # and tagged, no alias; the champion stays.
    worse = ("--num-leaves", "2", "--num-boost-round", "2", "--learning-rate", "0.01")
    assert _train(clean_lake, tracking_uri, brand, *worse) == 0
    out = capsys.readouterr().out
    assert (
        f"registered {model} v2; gate insufficient_exploration: 0 explore requests in the gate "
        "window; the gate needs at least 300 (training.promotion.min_exploration_requests); "
        "champion v1 stays, nothing aliased"
    ) in out
    assert client.get_registered_model(model).aliases == {"champion": "1"}
    second = client.get_model_version(model, "2")
    assert second.tags["gate"] == "insufficient_exploration"
    held = client.get_run(str(second.run_id))
    assert held.data.tags["gate"] == "insufficient_exploration"
    # The champion was scored on the same gate-window traffic (the biased NDCG, kept).
    assert held.data.metrics["biased.champion.ndcg_at_10"] == metrics["biased.model.ndcg_at_10"]

    # Same data, same configuration: idempotent, nothing new registered.
    assert _train(clean_lake, tracking_uri, brand) == 0
    assert "version 1 of" in capsys.readouterr().out
    assert len(client.search_model_versions(f"name = '{model}'")) == 2
