"""`ranking-experiments drift` on bad input: a clear message naming what is wrong, never a
traceback; real MLflow, real parquet files in a file:// lake."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from ranking_features import FEATURE_NAMES
from ranking_features.drift import DISTRIBUTION_ARTIFACT, feature_distribution
from ranking_features.events import FEATURES_DIR
from ranking_training.experiment_job import main

from recplat.testing.rankers import register_ranker, tiny_snapshot, train_ranker
from recplat.testing.servers import MlflowServer

MODEL = "dj-ranker"
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _drift(capsys: pytest.CaptureFixture[str], tracking: str, lake: Path) -> tuple[int, str]:
    code = main(
        ["drift", "--brand", "dj", "--lake-uri", lake.as_uri(), "--tracking-uri", tracking,
         "--now", NOW.isoformat(), "--min-rows", "50"]
    )  # fmt: skip
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _sample_file(lake: Path, version: str, rows: int, item_ctr: pa.Array | None = None) -> None:
    folder = lake / FEATURES_DIR / f"date={NOW.date().isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    ts = pa.array([NOW - timedelta(minutes=5)] * rows, pa.timestamp("us", tz="UTC"))
    columns = {"ts": ts, "model_version": pa.array([version] * rows)}
    for name in FEATURE_NAMES:
        columns[name] = pa.array(rng.random(rows).astype(np.float32))
    if item_ctr is not None:
        columns["item_ctr"] = item_ctr
    pq.write_table(pa.table(columns), folder / f"part-{rows}.parquet")


def test_the_drift_job_explains_what_it_cannot_judge(
    mlflow_server: MlflowServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tracking, lake = mlflow_server.tracking_uri, tmp_path / "lake"
    lake.mkdir()
    code, out = _drift(capsys, tracking, lake)
    assert code == 0 and "no champion" in out, out

    version = register_ranker(tracking, MODEL, train_ranker(seed=1), tiny_snapshot(), ("champion",))
    code, out = _drift(capsys, tracking, lake)
    assert code == 1, out
    assert (
        f"{MODEL} v{version}" in out and f"{DISTRIBUTION_ARTIFACT}: no training distribution" in out
    )
    assert "retrain the brand" in out and "Traceback" not in out

    run_id = str(MlflowClient(tracking_uri=tracking).get_model_version(MODEL, version).run_id)
    reference = feature_distribution(np.random.default_rng(1).random((500, 8)), "test")
    MlflowClient(tracking_uri=tracking).log_text(
        run_id, json.dumps(reference.to_dict()), DISTRIBUTION_ARTIFACT
    )
    _sample_file(lake, version, 10)
    code, out = _drift(capsys, tracking, lake)
    assert code == 0 and "10 sampled rows" in out and "no verdict" in out, out

    _sample_file(lake, version, 60)
    code, out = _drift(capsys, tracking, lake)
    assert code == 0 and "70 sampled rows in" in out and "PSI of noise alone" in out, out
    assert (
        MlflowClient(tracking_uri=tracking)
        .get_model_version(MODEL, version)
        .tags["drift.sample_rows"]
        == "70"
    )

    _sample_file(lake, version, 40, item_ctr=pa.array(["high"] * 40))
    code, out = _drift(capsys, tracking, lake)
    assert code == 1, out
    assert "part-40.parquet: column item_ctr: float values, got string" in out, out
    assert "Traceback" not in out
