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

from .conftest import END, FIRST

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


def test_train_register_promote_then_hold_a_worse_model_and_skip_a_rerun(
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

    assert _train(clean_lake, tracking_uri, brand) == 0
    out = capsys.readouterr().out
    assert f"registered {model} v1 as challenger; PROMOTED to champion" in out
    assert client.get_model_version_by_alias(model, "champion").version == "1"
    assert client.get_model_version_by_alias(model, "challenger").version == "1"
    first = client.get_model_version(model, "1")
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
    # The model beats the popularity baseline by a clear margin.
    assert run.data.metrics["model.ndcg_at_10"] > run.data.metrics["popularity.ndcg_at_10"] + 0.02
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

    # A deliberately worse configuration: registered as challenger, not promoted.
    worse = ("--num-leaves", "2", "--num-boost-round", "2", "--learning-rate", "0.01")
    assert _train(clean_lake, tracking_uri, brand, *worse, "--min-gain", "0.01") == 0
    out = capsys.readouterr().out
    assert f"registered {model} v2 as challenger; champion unchanged" in out
    assert client.get_model_version_by_alias(model, "challenger").version == "2"
    assert client.get_model_version_by_alias(model, "champion").version == "1"
    held = client.get_run(str(client.get_model_version(model, "2").run_id))
    assert held.data.tags["gate"] == "held"
    # The champion was scored on the same validation data, and the worse model lost.
    assert held.data.metrics["champion.ndcg_at_10"] == run.data.metrics["model.ndcg_at_10"]
    assert held.data.metrics["model.ndcg_at_10"] < held.data.metrics["champion.ndcg_at_10"]

    # Same data, same configuration: idempotent, nothing new registered.
    assert _train(clean_lake, tracking_uri, brand) == 0
    assert "version 1 of" in capsys.readouterr().out
    assert len(client.search_model_versions(f"name = '{model}'")) == 2
