"""MLflow sign-in from the env contract: the password file is read and set in-process only."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from ranking_features.mlflow_credentials import (
    MlflowCredentialsError,
    configure_mlflow_credentials,
)
from ranking_service.__main__ import main as serve_main

pytestmark = pytest.mark.fast


def test_the_password_file_becomes_mlflows_basic_auth(tmp_path: Path) -> None:
    password = secrets.token_hex(20)
    (tmp_path / "mlflow-password").write_text(password + "\n")
    env = {
        "RECPLAT_MLFLOW_USERNAME": "brand-newsroom",
        "RECPLAT_MLFLOW_PASSWORD_FILE": str(tmp_path / "mlflow-password"),
    }
    assert configure_mlflow_credentials(env) == "brand-newsroom"
    assert env["MLFLOW_TRACKING_USERNAME"] == "brand-newsroom"
    assert env["MLFLOW_TRACKING_PASSWORD"] == password


def test_without_the_variables_nothing_changes() -> None:
    env = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}
    assert configure_mlflow_credentials(env) is None
    assert env == {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}


@pytest.mark.parametrize(
    ("target", "reason"),
    [("missing", "No such file or directory"), ("a-directory", "Is a directory")],
)
def test_an_unreadable_password_file_names_the_variable(
    tmp_path: Path, target: str, reason: str
) -> None:
    (tmp_path / "a-directory").mkdir()
    env = {
        "RECPLAT_MLFLOW_USERNAME": "brand-newsroom",
        "RECPLAT_MLFLOW_PASSWORD_FILE": str(tmp_path / target),
    }
    with pytest.raises(MlflowCredentialsError) as raised:
        configure_mlflow_credentials(env)
    assert str(raised.value) == (
        f"RECPLAT_MLFLOW_PASSWORD_FILE: cannot read {tmp_path / target}: {reason}; "
        "mount the brand's MLflow password secret there"
    )
    assert "MLFLOW_TRACKING_PASSWORD" not in env


def test_an_empty_file_or_a_missing_half_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    empty = str(tmp_path / "empty")
    cases = [
        (
            {"RECPLAT_MLFLOW_USERNAME": "brand-a", "RECPLAT_MLFLOW_PASSWORD_FILE": empty},
            f"RECPLAT_MLFLOW_PASSWORD_FILE: {empty} is empty; "
            "it must hold the MLflow password of brand-a",
        ),
        (
            {"RECPLAT_MLFLOW_USERNAME": "brand-a"},
            "RECPLAT_MLFLOW_USERNAME is set to 'brand-a' but RECPLAT_MLFLOW_PASSWORD_FILE is "
            "not; set it to the file holding that user's MLflow password, or unset both",
        ),
        (
            {"RECPLAT_MLFLOW_PASSWORD_FILE": empty},
            "RECPLAT_MLFLOW_PASSWORD_FILE is set but RECPLAT_MLFLOW_USERNAME is not; "
            "set it to the MLflow user the password belongs to (brand-<name>)",
        ),
    ]
    for env, message in cases:
        with pytest.raises(MlflowCredentialsError) as raised:
            configure_mlflow_credentials(env)
        assert str(raised.value) == message


def test_the_service_refuses_to_start_with_an_unreadable_password_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "api-key").write_text(secrets.token_hex(24))
    for name, value in {
        "RECPLAT_BRAND": "newsroom",
        "RECPLAT_LAKE_URI": (tmp_path / "lake").as_uri(),
        "RECPLAT_API_KEY_FILE": str(tmp_path / "api-key"),
        "RECPLAT_EVENT_LOG_DIR": str(tmp_path / "events"),
        "RECPLAT_MLFLOW_USERNAME": "brand-newsroom",
        "RECPLAT_MLFLOW_PASSWORD_FILE": str(tmp_path / "nope"),
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        serve_main([])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (
        f"ranking-serve: RECPLAT_MLFLOW_PASSWORD_FILE: cannot read {tmp_path / 'nope'}: "
        "No such file or directory; mount the brand's MLflow password secret there\n"
    )
