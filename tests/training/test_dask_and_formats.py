"""Standard svmlight LTR data and the synthetic generator (training on Dask:
`test_dask_pipeline.py`, `test_dask_job.py`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ranking_features.events import FEEDBACK_SCHEMA, IMPRESSION_SCHEMA
from ranking_training.__main__ import main
from ranking_training.data import load_lake
from ranking_training.features import build_training_matrix
from ranking_training.split import split_by_time

from recplat.synthetic import GroundTruth, SynthParams, generate
from tests.training.lake_window import END, FIRST


def test_svmlight_format_trains_and_reports_metrics(
    clean_lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.datasets import dump_svmlight_file

    data = load_lake(clean_lake.as_uri(), FIRST, END)
    matrix, _ = build_training_matrix(data)
    windows = split_by_time(matrix, data.window_start, data.window_end, 1)
    train, valid = windows.train, windows.early_stopping
    for name, part in (("train.txt", train), ("valid.txt", valid)):
        dump_svmlight_file(part.features, part.labels, str(tmp_path / name))
        np.savetxt(tmp_path / f"{name}.query", part.group_sizes, fmt="%d")
    args = ["--format", "svmlight", "--train", str(tmp_path / "train.txt")]
    assert main([*args, "--valid", str(tmp_path / "valid.txt"), "--num-threads", "1"]) == 0
    assert "ndcg@10=0." in capsys.readouterr().out
    (tmp_path / "valid.txt.query").unlink()
    assert main([*args, "--valid", str(tmp_path / "valid.txt")]) == 1
    assert "valid.txt.query: missing" in capsys.readouterr().err


def test_synthetic_data_is_deterministic_and_follows_the_lake_schemas() -> None:
    params = SynthParams(brand="b", users=50, items=40, days=3, seed=5, end_date="2025-01-31")
    first, second = generate(params), generate(params)
    assert first.impressions.equals(second.impressions)
    assert first.impressions.schema.equals(IMPRESSION_SCHEMA)
    assert first.feedback.schema.equals(FEEDBACK_SCHEMA)
    assert 0.0 < first.oracle["ndcg@10"] <= 1.0


def test_ground_truth_rebuilds_from_its_json_and_has_position_bias() -> None:
    truth = GroundTruth.from_params(
        SynthParams(brand="b", users=50, items=40, days=3, seed=5, end_date="2025-01-31")
    )
    rebuilt = GroundTruth.from_json(truth.to_json())
    now = 1_738_300_000.0
    assert rebuilt.click_probability("u000007", "i000003", 1, now) == truth.click_probability(
        "u000007", "i000003", 1, now
    )
    top, lower = (truth.click_probability("u000007", "i000003", p, now) for p in (1, 5))
    assert 0.0 < lower < top < 1.0
    # Users outside the generated data still get a deterministic probability.
    assert truth.click_probability("visitor-42", "i000003", 1, now) == truth.click_probability(
        "visitor-42", "i000003", 1, now
    )


def test_recplat_data_synth_writes_the_lake_layout(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from recplat.data_cli import app

    lake = tmp_path / "lake"
    args = ["--brand", "acme", "--users", "40", "--items", "30", "--days", "2"]
    result = CliRunner().invoke(app, [*args, "--out", lake.as_uri(), "--end-date", "2025-01-31"])
    assert result.exit_code == 0, result.output
    assert "oracle (ground truth) on the logged labels: ndcg@1=" in result.output
    assert sorted(p.name for p in (lake / "events" / "impressions").iterdir()) == [
        "date=2025-01-30",
        "date=2025-01-31",
    ]
    assert (lake / "catalog" / "items.parquet").exists()
    assert GroundTruth.load(lake.as_uri()).params.users == 40
    bad = CliRunner().invoke(app, [*args, "--out", lake.as_uri(), "--end-date", "31.01.2025"])
    assert bad.exit_code == 2
    assert "--end-date: expected YYYY-MM-DD, got '31.01.2025'" in bad.output
