"""`ranking-experiments`: find a brand's running online experiment, judge it, act on the verdict.

The statistics are `ranking_training.experiments` (pure functions); this module is the wiring
around them (docs/architecture.md, "Online experiments"):

- the running experiment is the version behind the `challenger` alias with its start tags
  (`experiment_id`, `experiment.started_at`, `experiment.champion_version`, set by
  `ranking_training.registry.start_experiment`);
- `evaluate` reads the lake, decides, and applies the decision to the registry: promote moves
  `champion` to the challenger and removes `challenger`; stop removes `challenger`; continue
  changes nothing. Every evaluation is a run in `recplat/<brand>/experiments` with the figures,
  and the version gets `experiment.decision` and `experiment.evaluated_at` tags;
- `status` does the same reading and deciding, and changes nothing.

Configured like `ranking-train`: RECPLAT_BRAND, RECPLAT_ENV, RECPLAT_LAKE_URI,
MLFLOW_TRACKING_URI, RECPLAT_MODEL_NAME (and on AKS the MLflow writer's basic auth); the
brand's `serving.challenger_traffic` and `training.promotion.max_experiment_days` come from
flags, from `--brand-file`, or from RECPLAT_CHALLENGER_TRAFFIC. Exit codes: 0 done (including
"no experiment running"), 1 the evaluation could not run (lake, MLflow), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ranking_features.mlflow_credentials import (
    MlflowCredentialsError,
    configure_mlflow_credentials,
)
from ranking_features.mlflow_names import registered_model_name

from ranking_training.config import zoned_time
from ranking_training.errors import TrainingError

PROGRAM = "ranking-experiments"
DEFAULT_MAX_EXPERIMENT_DAYS = 14
# Version tags of a decided experiment (the contract's table).
EXPERIMENT_OUTCOME_TAG = "experiment"
EXPERIMENT_DECISION_TAG = "experiment.decision"
EXPERIMENT_EVALUATED_AT_TAG = "experiment.evaluated_at"
EXPERIMENT_REASON_TAG = "experiment.reason"
# A cron job should fail fast on a dead tracking server, not retry for minutes; and its stdout
# is the report (or JSON), so MLflow must not print run links into it.
MLFLOW_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


class ExperimentJobError(TrainingError):
    """The evaluation cannot run; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class JobSettings:
    brand: str
    env: str
    tracking_uri: str
    lake_uri: str
    model_name: str
    challenger_traffic: float
    max_experiment_days: float
    now: datetime


@dataclass(frozen=True)
class RunningExperiment:
    """The experiment the `challenger` alias stands for, as its start tagged it."""

    experiment_id: str
    challenger_version: str
    champion_version: str
    started_at: datetime
    last_decision: str | None
    last_evaluated_at: str | None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Evaluate a brand's running online experiment."
    )
    parser.add_argument(
        "command",
        choices=("evaluate", "status", "drift"),
        help="drift: the champion's feature drift (`ranking-experiments drift --help`)",
    )
    env = os.environ.get
    parser.add_argument("--brand", default=env("RECPLAT_BRAND"), help="[RECPLAT_BRAND]")
    parser.add_argument("--env", default=env("RECPLAT_ENV", "dev"), help="[RECPLAT_ENV]")
    parser.add_argument("--lake-uri", default=env("RECPLAT_LAKE_URI"), help="[RECPLAT_LAKE_URI]")
    parser.add_argument(
        "--tracking-uri", default=env("MLFLOW_TRACKING_URI"), help="[MLFLOW_TRACKING_URI]"
    )
    parser.add_argument(
        "--model-name",
        default=env("RECPLAT_MODEL_NAME", ""),
        help="default: the brand's registered model name",
    )
    parser.add_argument(
        "--brand-file", type=Path, help="take challenger_traffic and max_experiment_days from it"
    )
    parser.add_argument(
        "--challenger-traffic",
        type=float,
        help="share of users in the challenger arm [RECPLAT_CHALLENGER_TRAFFIC]",
    )
    parser.add_argument(
        "--max-experiment-days",
        type=float,
        help=f"stop an experiment without a verdict after this (default "
        f"{DEFAULT_MAX_EXPERIMENT_DAYS})",
    )
    parser.add_argument(
        "--now", type=zoned_time, help="the evaluation's time, ISO 8601 with a zone (default now)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["drift"]:  # its own flags: ranking_training.drift_job
        from ranking_training.drift_job import main as drift_main

        return drift_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, value in MLFLOW_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    try:
        configure_mlflow_credentials()
    except MlflowCredentialsError as error:
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        return 2
    try:
        settings = settings_from_args(args)
    except ValueError as error:
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        return 2
    try:
        result = run(settings, apply=args.command == "evaluate")
    except TrainingError as error:
        print(f"{PROGRAM} {args.command}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else describe(result))
    return 0


def settings_from_args(args: argparse.Namespace) -> JobSettings:
    """The job's settings; a ValueError names the missing or invalid one."""
    for name, variable in (
        ("brand", "RECPLAT_BRAND"),
        ("lake_uri", "RECPLAT_LAKE_URI"),
        ("tracking_uri", "MLFLOW_TRACKING_URI"),
    ):
        if not getattr(args, name):
            raise ValueError(f"--{name.replace('_', '-')} (or {variable}) is required")
    traffic, max_days = _brand_file_settings(args.brand_file, args.env)
    if args.challenger_traffic is not None:
        traffic = args.challenger_traffic
    elif traffic is None and os.environ.get("RECPLAT_CHALLENGER_TRAFFIC"):
        traffic = _float("RECPLAT_CHALLENGER_TRAFFIC", os.environ["RECPLAT_CHALLENGER_TRAFFIC"])
    if traffic is None:
        raise ValueError(
            "the challenger's share of users is unknown: pass --challenger-traffic, "
            "--brand-file or RECPLAT_CHALLENGER_TRAFFIC (the service's serving.challenger_traffic)"
        )
    if not 0.0 <= traffic <= 0.5:
        raise ValueError(f"--challenger-traffic: a number between 0 and 0.5, got {traffic}")
    max_days = args.max_experiment_days or max_days or DEFAULT_MAX_EXPERIMENT_DAYS
    if not max_days > 0:
        raise ValueError(f"--max-experiment-days: a number of days > 0, got {max_days}")
    return JobSettings(
        brand=args.brand,
        env=args.env,
        tracking_uri=args.tracking_uri,
        lake_uri=args.lake_uri,
        model_name=args.model_name or registered_model_name(args.brand),
        challenger_traffic=traffic,
        max_experiment_days=max_days,
        now=args.now or datetime.now(UTC),
    )


def _brand_file_settings(path: Path | None, env: str) -> tuple[float | None, float | None]:
    if path is None:
        return None, None
    from ranking_features.brand import load_brand

    try:
        brand = load_brand(path).for_environment(env)
    except Exception as error:  # the brand loader's errors already name file and field
        raise ValueError(str(error)) from error
    return brand.serving.challenger_traffic, brand.training.promotion.max_experiment_days


def run(settings: JobSettings, *, apply: bool) -> dict[str, Any]:
    """Judge the running experiment; with `apply`, act on the decision and record it.
    Returns what happened, as plain data (what `describe` prints and `--json` dumps)."""
    from mlflow import MlflowClient

    from ranking_training.experiments import ExperimentSpec, evaluate

    _check_lake(settings.lake_uri)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    running = find_running_experiment(client, settings)
    base: dict[str, Any] = {
        "brand": settings.brand,
        "model_name": settings.model_name,
        "evaluated_at": _iso(settings.now),
    }
    if isinstance(running, str):
        return {**base, "running": False, "message": running}
    if settings.challenger_traffic <= 0:
        return {
            **base,
            "running": False,
            "message": (
                f"challenger v{running.challenger_version} ({running.experiment_id}) gets no "
                "users: the brand's serving.challenger_traffic is 0, so nothing can be judged"
            ),
        }
    spec = ExperimentSpec(
        experiment_id=running.experiment_id,
        started_at=running.started_at,
        champion_version=running.champion_version,
        challenger_version=running.challenger_version,
        challenger_traffic=settings.challenger_traffic,
        max_experiment_days=settings.max_experiment_days,
    )
    try:
        stats, decision = evaluate(settings.lake_uri, spec, settings.now)
    except (OSError, ValueError) as error:
        raise ExperimentJobError(f"cannot read the lake {settings.lake_uri}: {error}") from error
    result = {
        **base,
        "running": True,
        "experiment_id": spec.experiment_id,
        "champion_version": spec.champion_version,
        "challenger_version": spec.challenger_version,
        "started_at": _iso(spec.started_at),
        "challenger_traffic": spec.challenger_traffic,
        "max_experiment_days": spec.max_experiment_days,
        "arms": {arm: _arm(s) for arm, s in stats.items()},
        "ctr_difference": decision.figures.get("ctr_difference"),
        "ctr_difference_low": decision.figures.get("ctr_difference_low"),
        "ctr_difference_high": decision.figures.get("ctr_difference_high"),
        "msprt_p_value": decision.figures.get("msprt_p_value"),
        "alpha": spec.alpha,
        "decision": decision.kind,
        "reason": decision.reason,
        "outcome": decision.experiment_tag,
        "last_decision": running.last_decision,
        "last_evaluated_at": running.last_evaluated_at,
        "applied": False,
    }
    if apply:
        _mlflow_call(
            settings,
            "record the decision",
            lambda: apply_decision(client, settings, spec, decision),
        )
        result["applied"] = True
        result["action"] = _action(decision.kind, spec)
    return result


def find_running_experiment(client: Any, settings: JobSettings) -> RunningExperiment | str:
    """The running experiment, or a sentence saying why none runs."""
    from mlflow.exceptions import MlflowException

    from ranking_training.registry import (
        CHALLENGER,
        EXPERIMENT_CHAMPION_TAG,
        EXPERIMENT_ID_TAG,
        EXPERIMENT_STARTED_AT_TAG,
    )

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
    from ranking_training.registry import CHALLENGER, CHAMPION

    model, version = settings.model_name, spec.challenger_version
    tags = {
        EXPERIMENT_DECISION_TAG: decision.kind,
        EXPERIMENT_EVALUATED_AT_TAG: _iso(settings.now),
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
            "online.ctr": f"{values[0]:.6g}",
            "online.ctr_low": f"{values[1]:.6g}",
            "online.ctr_high": f"{values[2]:.6g}",
            "online.requests": str(int(figures[f"{arm}.requests"])),
            "online.experiment_id": spec.experiment_id,
            "online.evaluated_at": _iso(settings.now),
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
            "experiment.event": "evaluation",
            "experiment_id": spec.experiment_id,
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
        "started_at": _iso(spec.started_at),
        "evaluated_at": _iso(settings.now),
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


def describe(result: dict[str, Any]) -> str:
    """The result for a person: the experiment, its arms, the interval and the decision."""
    if not result["running"]:
        return f"{result['brand']}: {result['message']}"
    lines = [
        f"{result['brand']}: experiment {result['experiment_id']}",
        f"  champion v{result['champion_version']} vs challenger v{result['challenger_version']}"
        f" ({result['challenger_traffic']:.0%} of users), started {result['started_at']},"
        f" max {result['max_experiment_days']:g} days",
    ]
    for arm, figures in result["arms"].items():
        lines.append(
            f"  {arm:<10} v{figures['model_version']}: {figures['users']} users,"
            f" {figures['requests']} requests, CTR {figures['ctr']:.4f}"
            f" [{figures['ctr_ci_low']:.4f}, {figures['ctr_ci_high']:.4f}],"
            f" conversion rate {figures['conversion_rate']:.4f},"
            f" fallback {figures['fallback_ratio']:.3f},"
            f" errors {figures.get('error_ratio', 0.0):.3f}"
        )
    low, high = result["ctr_difference_low"], result["ctr_difference_high"]
    lines.append(
        f"  CTR difference {result['ctr_difference']:+.4f},"
        f" {1 - result['alpha']:.0%} confidence sequence [{low:+.4f}, {high:+.4f}],"
        f" mSPRT p {result['msprt_p_value']:.3g}"
    )
    if result["last_decision"]:
        lines.append(
            f"  last evaluation: {result['last_decision']} at {result['last_evaluated_at']}"
        )
    verdict = f"  decision: {result['decision']}: {result['reason']}"
    if result["applied"]:
        verdict += f"; {result['action']}"
    lines.append(verdict)
    return "\n".join(lines)


def _arm(stats: Any) -> dict[str, Any]:
    low, high = stats.ctr.interval()
    return {
        "model_version": stats.model_version,
        "users": stats.users,
        "requests": stats.requests,
        "clicked_requests": stats.clicked_requests,
        "converted_requests": stats.converted_requests,
        "fallback_ratio": stats.fallback_ratio,
        "error_requests": stats.error_requests,
        "error_ratio": stats.error_ratio,
        "ctr": stats.ctr.estimate,
        "ctr_ci_low": low,
        "ctr_ci_high": high,
        "conversion_rate": stats.conversion_rate.estimate,
    }


def _action(kind: str, spec: Any) -> str:
    if kind == "promote":
        return f"champion -> v{spec.challenger_version}, challenger alias removed"
    if kind == "stop":
        return f"challenger alias removed; champion stays v{spec.champion_version}"
    return "nothing changed"


def _check_lake(lake_uri: str) -> None:
    from ranking_features.lake import open_lake

    try:
        fs, root = open_lake(lake_uri)
        found = fs.exists(root)
    except ValueError as error:
        raise ExperimentJobError(str(error)) from error
    except Exception as error:  # storage SDKs raise their own types
        raise ExperimentJobError(
            f"cannot reach the lake {lake_uri}: {type(error).__name__}: {error}"
        ) from error
    if not found:
        raise ExperimentJobError(
            f"the lake {lake_uri} does not exist; check RECPLAT_LAKE_URI (or --lake-uri): "
            "the service ships its impressions and feedback there"
        )


def _unreachable(settings: JobSettings, error: Exception) -> ExperimentJobError:
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ExperimentJobError(
        f"MLflow at {settings.tracking_uri} is unreachable or refused the request "
        f"({detail[:300]}); check MLFLOW_TRACKING_URI (or --tracking-uri) and the credentials"
    )


def _mlflow_call(settings: JobSettings, what: str, call: Any) -> None:
    try:
        call()
    except Exception as error:
        raise ExperimentJobError(
            f"could not {what} in MLflow at {settings.tracking_uri}: {str(error)[:300]}; "
            "rerun the evaluation: it reads the registry afresh"
        ) from error


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _float(variable: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{variable}: a number, got {text!r}") from None


if __name__ == "__main__":
    sys.exit(main())
