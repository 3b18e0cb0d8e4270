"""`ranking-train` signs in to MLflow from the password file, and stops clearly when it cannot."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from ranking_training.__main__ import main

pytestmark = pytest.mark.fast


def test_an_unreadable_password_file_stops_training_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECPLAT_MLFLOW_USERNAME", "brand-newsroom")
    monkeypatch.setenv("RECPLAT_MLFLOW_PASSWORD_FILE", str(tmp_path / "nope"))
    assert main(["--brand", "newsroom", "--lake-uri", tmp_path.as_uri()]) == 2
    assert capsys.readouterr().err == (
        f"ranking-train: RECPLAT_MLFLOW_PASSWORD_FILE: cannot read {tmp_path / 'nope'}: "
        "No such file or directory; mount the brand's MLflow password secret there\n"
    )


def test_the_password_is_set_for_mlflow_before_training_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    password = secrets.token_hex(20)
    (tmp_path / "mlflow-password").write_text(password)
    monkeypatch.setenv("RECPLAT_MLFLOW_USERNAME", "brand-newsroom")
    monkeypatch.setenv("RECPLAT_MLFLOW_PASSWORD_FILE", str(tmp_path / "mlflow-password"))
    # setenv first, so that the monkeypatch removes what the job sets when the test ends.
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    # No tracking URI: the job stops at argument checks, after signing in was configured.
    with pytest.raises(SystemExit):
        main(["--brand", "newsroom", "--lake-uri", tmp_path.as_uri()])
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "brand-newsroom"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == password
    assert password not in "".join(capsys.readouterr())
