"""The running online experiment in the MLflow registry: found from the challenger's start tags, and
a decision acted on and recorded (docs/architecture.md, "Online experiments")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ranking_features.mlflow_names import (
    EXPERIMENT_CHAMPION_TAG,
    EXPERIMENT_DECISION_TAG,
    EXPERIMENT_EVALUATED_AT_TAG,
    EXPERIMENT_EVENT_TAG,
    EXPERIMENT_ID_TAG,
    EXPERIMENT_OUTCOME_TAG,
    EXPERIMENT_REASON_TAG,
    EXPERIMENT_STARTED_AT_TAG,
    ONLINE_CTR_HIGH_TAG,
    ONLINE_CTR_LOW_TAG,
    ONLINE_CTR_TAG,
    ONLINE_EVALUATED_AT_TAG,
    ONLINE_EXPERIMENT_ID_TAG,
    ONLINE_REQUESTS_TAG,
)

from ranking_training.experiment_settings import ExperimentJobError, JobSettings
from ranking_training.job_env import iso_utc, mlflow_unreachable


@dataclass(frozen=True)
class RunningExperiment:
    """The experiment the `challenger` alias stands for, as its start tagged it."""

    experiment_id: str
    challenger_version: str
    champion_version: str
    started_at: datetime
    last_decision: str | None
    last_evaluated_at: str | None


def find_running_experiment(client: Any, settings: JobSettings) -> RunningExperiment | str:
    """The running experiment, or a sentence saying why none runs."""
    from mlflow.exceptions import MlflowException
    from ranking_features.mlflow_names import CHALLENGER

    model = settings.model_name
    try:
        version = client.get_model_version_by_alias(model, CHALLENGER)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return f"no experiment running: {model} has no {CHALLENGER} alias"
        raise _unreachable(settings, error) from error
    except Exception as error:  # requests' connection errors, when MLflow gives up retrying
        raise _unreachable(settings, error) from error
    tags = dict(version.tags or {})
    experiment_id = tags.get(EXPERIMENT_ID_TAG)
    if not experiment_id:
        return (
            f"no experiment running: {model} v{version.version} is {CHALLENGER} but has no "
            f"{EXPERIMENT_ID_TAG} tag, so the service gives it no traffic; the training job "
            "starts experiments when its gate moves the alias"
        )
    started_text = tags.get(EXPERIMENT_STARTED_AT_TAG, "")
    try:
        started_at = datetime.fromisoformat(started_text)
    except ValueError:
        raise ExperimentJobError(
            f"{model} v{version.version}: tag {EXPERIMENT_STARTED_AT_TAG}: an ISO 8601 time, "
            f"got {started_text!r}; set it to the experiment's start (e.g. "
            "2026-01-31T12:00:00+00:00)"
        ) from None
    if started_at.tzinfo is None:
        started_at = started_at.replace(tzinfo=UTC)
    champion = tags.get(EXPERIMENT_CHAMPION_TAG, "none")
    return RunningExperiment(
        experiment_id=experiment_id,
        challenger_version=str(version.version),
        champion_version=champion,
        started_at=started_at,
        last_decision=tags.get(EXPERIMENT_DECISION_TAG),
        last_evaluated_at=tags.get(EXPERIMENT_EVALUATED_AT_TAG),
    )


def apply_decision(client: Any, settings: JobSettings, spec: Any, decision: Any) -> None:
    """Act on `decision` in the registry and record it (the contract's table).

    Tags before aliases, as at the start: whoever sees an alias move can read the outcome.
    A promotion moves `champion` before it removes `challenger`, so the service never serves
    a brand without a champion; with both on one version the experiment already stops."""
    from ranking_features.mlflow_names import CHALLENGER, CHAMPION

    model, version = settings.model_name, spec.challenger_version
    tags = {
        EXPERIMENT_DECISION_TAG: decision.kind,
        EXPERIMENT_EVALUATED_AT_TAG: iso_utc(settings.now),
        EXPERIMENT_REASON_TAG: decision.reason[:5000],
    }
    if decision.experiment_tag is not None:
        tags[EXPERIMENT_OUTCOME_TAG] = decision.experiment_tag
    for key, value in tags.items():
        client.set_model_version_tag(model, version, key, value)
    for arm_version, online in online_ctr_tags(settings, spec, decision).items():
        for key, value in online.items():
            client.set_model_version_tag(model, arm_version, key, value)
    if decision.kind == "promote":
        client.set_registered_model_alias(model, CHAMPION, version)
    if decision.kind in ("promote", "stop"):
        client.delete_registered_model_alias(model, CHALLENGER)
    log_evaluation_run(client, settings, spec, decision)


def online_ctr_tags(settings: JobSettings, spec: Any, decision: Any) -> dict[str, dict[str, str]]:
    """Per arm's version with requests: its CTR and 95 % interval as `online.*` tags, which the
    service exports as `recplat_online_ctr` (ranking_service.drift_gauges)."""
    from ranking_features.assignment import ARMS

    figures = decision.figures
    out: dict[str, dict[str, str]] = {}
    for arm in ARMS:
        values = [figures.get(f"{arm}.{name}") for name in ("ctr", "ctr_ci_low", "ctr_ci_high")]
        if not figures.get(f"{arm}.requests") or not all(
            v is not None and math.isfinite(v) for v in values
        ):
            continue
        out[spec.version_of(arm)] = {
            ONLINE_CTR_TAG: f"{values[0]:.6g}",
            ONLINE_CTR_LOW_TAG: f"{values[1]:.6g}",
            ONLINE_CTR_HIGH_TAG: f"{values[2]:.6g}",
            ONLINE_REQUESTS_TAG: str(int(figures[f"{arm}.requests"])),
            ONLINE_EXPERIMENT_ID_TAG: spec.experiment_id,
            ONLINE_EVALUATED_AT_TAG: iso_utc(settings.now),
        }
    return out


def log_evaluation_run(client: Any, settings: JobSettings, spec: Any, decision: Any) -> str:
    """One run in `recplat/<brand>/experiments`: params, the figures as metrics, the decision."""
    from ranking_features.mlflow_names import experiments_experiment_name

    from ranking_training.registry import experiment_id_by_name

    experiment = experiment_id_by_name(client, experiments_experiment_name(settings.brand))
    run = client.create_run(
        experiment,
        run_name=f"{spec.experiment_id} @ {settings.now.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        tags={
            EXPERIMENT_EVENT_TAG: "evaluation",
            EXPERIMENT_ID_TAG: spec.experiment_id,
            "decision": decision.kind,
            "reason": decision.reason[:5000],
            "model_name": settings.model_name,
        },
    )
    run_id = run.info.run_id
    params = {
        "experiment_id": spec.experiment_id,
        "champion_version": spec.champion_version,
        "challenger_version": spec.challenger_version,
        "started_at": iso_utc(spec.started_at),
        "evaluated_at": iso_utc(settings.now),
        "challenger_traffic": spec.challenger_traffic,
        "max_experiment_days": spec.max_experiment_days,
        "alpha": spec.alpha,
    }
    for key, value in params.items():
        client.log_param(run_id, key, str(value))
    timestamp = int(settings.now.timestamp() * 1000)
    for key, value in decision.figures.items():
        # An unbounded sequence (no information yet) is left out rather than logged as inf.
        if math.isfinite(value):
            client.log_metric(run_id, key, float(value), timestamp=timestamp)
    client.set_terminated(run_id)
    return str(run_id)


def _unreachable(settings: JobSettings, error: Exception) -> ExperimentJobError:
    return ExperimentJobError(mlflow_unreachable(settings.tracking_uri, error))


def mlflow_call(settings: JobSettings, what: str, call: Any) -> None:
    try:
        call()
    except Exception as error:
        raise ExperimentJobError(
            f"could not {what} in MLflow at {settings.tracking_uri}: {str(error)[:300]}; "
            "rerun the evaluation: it reads the registry afresh"
        ) from error
