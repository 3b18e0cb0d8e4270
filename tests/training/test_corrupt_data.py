"""Corrupt lake data stops `ranking-train` with a message naming file and column; nothing is
registered in MLflow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow import MlflowClient
from ranking_training.__main__ import main

from tests.training.lake_corruptions import CORRUPTIONS, no_feedback
from tests.training.lake_window import END, FIRST


@pytest.mark.parametrize("corrupt", list(CORRUPTIONS), ids=lambda f: f.__name__)
def test_corrupt_input_stops_the_job_and_registers_nothing(
    corrupt: Callable[[Path], Path],
    lake_copy: Path,
    mlflow_server: object,
    brand_name: Callable[[], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    where = corrupt(lake_copy)
    brand = brand_name()
    tracking_uri = mlflow_server.tracking_uri  # type: ignore[attr-defined]
    exit_code = main(
        [
            "--brand", brand,
            "--lake-uri", lake_copy.as_uri(),
            "--tracking-uri", tracking_uri,
            "--from", str(FIRST),
            "--to", str(END),
        ]
    )  # fmt: skip
    error = capsys.readouterr().err
    assert exit_code == 1
    assert error.startswith("ranking-train: ")
    assert CORRUPTIONS[corrupt] in error
    if corrupt is not no_feedback:
        assert str(where.relative_to(lake_copy)) in error
    assert "Traceback" not in error
    client = MlflowClient(tracking_uri)
    assert client.search_registered_models(f"name = '{brand}-ranker'") == []
