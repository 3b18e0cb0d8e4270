"""The workload environment (`ranking_features.workload_env`): what a writer sets is what a
reader reads, and neither can name a variable the contract lacks.

The variables are spelled out here on purpose (tests/test_contracts.py explains why tests may):
they are what a pod spec, a shell or a CI file sets.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ranking_features.events import FEEDBACK_TYPES, FeedbackType
from ranking_features.workload_env import (
    DaskSchedulerEnv,
    MlflowAuthEnv,
    ServiceEnv,
    TrainingEnv,
    WorkloadEnv,
    WorkloadEnvError,
)

pytestmark = pytest.mark.fast


def test_what_a_writer_sets_the_service_reads_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    written = {
        **WorkloadEnv.variables(brand="acme", env="prod", lake_uri="file:///lake"),
        **ServiceEnv.variables(
            api_key_file=tmp_path / "key",
            max_candidates=250,
            challenger_traffic=0.1,
            exploration=0.2,
            default_k=10,
            feature_sample=1.0,
            reload_interval_s=30,
            event_log_dir="/var/lib/recplat/events",
        ),
    }
    assert written == {
        "RECPLAT_BRAND": "acme",
        "RECPLAT_ENV": "prod",
        "RECPLAT_LAKE_URI": "file:///lake",
        "RECPLAT_API_KEY_FILE": str(tmp_path / "key"),
        "RECPLAT_MAX_CANDIDATES": "250",
        "RECPLAT_CHALLENGER_TRAFFIC": "0.1",
        "RECPLAT_EXPLORATION": "0.2",
        "RECPLAT_DEFAULT_K": "10",
        "RECPLAT_FEATURE_SAMPLE": "1.0",
        # The writer's own spelling: infra's pods have always had "30", not "30.0".
        "RECPLAT_RELOAD_INTERVAL_S": "30",
        "RECPLAT_EVENT_LOG_DIR": "/var/lib/recplat/events",
    }
    for name, value in written.items():
        monkeypatch.setenv(name, value)
    read = ServiceEnv.read()
    assert (read.brand, read.env, read.lake_uri, read.api_key_file) == (
        "acme",
        "prod",
        "file:///lake",
        tmp_path / "key",
    )
    assert (read.max_candidates, read.challenger_traffic, read.exploration) == (250, 0.1, 0.2)
    assert (read.default_k, read.feature_sample, read.reload_interval_s) == (10, 1.0, 30.0)
    assert read.event_log_dir == Path("/var/lib/recplat/events")


def test_the_tracking_uri_is_mlflows_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert WorkloadEnv.variables(tracking_uri="http://mlflow:5000") == {
        "MLFLOW_TRACKING_URI": "http://mlflow:5000"
    }
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert TrainingEnv.read().tracking_uri == "http://mlflow:5000"


def test_a_misspelled_field_cannot_be_written() -> None:
    with pytest.raises(WorkloadEnvError) as error:
        ServiceEnv.variables(reload_interval=30)
    assert str(error.value).startswith("ServiceEnv has no variable for 'reload_interval'; its")


@pytest.mark.parametrize(
    ("contract", "values", "message"),
    [
        (ServiceEnv, {"exploration": 0.3}, "RECPLAT_EXPLORATION: Input should be less than or "
         "equal to 0.2, got 0.3"),
        (ServiceEnv, {"brand": "Acme"}, "RECPLAT_BRAND: String should match pattern"),
        (DaskSchedulerEnv, {"training_workers": 0}, "RECPLAT_TRAINING_WORKERS: Input should be "
         "greater than or equal to 1, got 0"),
    ],
)  # fmt: skip
def test_a_bad_value_is_refused_when_written_naming_the_variable(
    contract: type[WorkloadEnv], values: dict[str, object], message: str
) -> None:
    with pytest.raises(WorkloadEnvError) as error:
        contract.variables(**values)  # type: ignore[arg-type]
    assert str(error.value).startswith(message), error.value


def test_a_value_known_only_at_deploy_time_is_written_as_it_is() -> None:
    deferred = object()  # stands for a Pulumi Output
    written = WorkloadEnv.deploy_variables(brand="acme", lake_uri=deferred)
    assert written == {"RECPLAT_BRAND": "acme", "RECPLAT_LAKE_URI": deferred}


def test_the_mlflow_credentials_read_the_contracts_variables() -> None:
    from ranking_features.mlflow_credentials import PASSWORD_FILE_VARIABLE, USERNAME_VARIABLE

    assert (USERNAME_VARIABLE, PASSWORD_FILE_VARIABLE) == (
        "RECPLAT_MLFLOW_USERNAME",
        "RECPLAT_MLFLOW_PASSWORD_FILE",
    )
    assert list(MlflowAuthEnv.variables(mlflow_username="u", mlflow_password_file="/p")) == [
        USERNAME_VARIABLE,
        PASSWORD_FILE_VARIABLE,
    ]


def test_the_training_job_takes_its_defaults_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ranking_training.__main__ import build_parser

    monkeypatch.setenv("RECPLAT_BRAND", "acme")
    monkeypatch.setenv("RECPLAT_LAKE_URI", "file:///lake")
    monkeypatch.setenv("RECPLAT_GIT_SHA", "0123abc")
    args = build_parser().parse_args(["--env", "prod"])
    assert (args.brand, args.env, args.lake_uri, args.git_sha) == (
        "acme",
        "prod",
        "file:///lake",
        "0123abc",
    )


def test_a_bad_variable_stops_a_job_with_its_name_and_no_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ranking_training.experiment_job import main

    monkeypatch.setenv("RECPLAT_CHALLENGER_TRAFFIC", "10%")
    with pytest.raises(SystemExit) as exit_:
        main(["status"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert (
        "invalid training environment: RECPLAT_CHALLENGER_TRAFFIC: Input should be a valid number"
        in err
    )
    assert "Traceback" not in err


def test_the_feedback_type_literal_is_the_feedback_types() -> None:
    assert FeedbackType.__args__ == FEEDBACK_TYPES  # type: ignore[attr-defined]


def test_the_service_settings_are_the_contracts_service_part() -> None:
    from ranking_service.settings import Settings

    assert set(Settings.model_fields) == set(ServiceEnv.model_fields)
    assert sys.modules["ranking_service.settings"].API_KEY_FILE == "RECPLAT_API_KEY_FILE"
