"""One evaluation of the running experiment: read the lake, decide with
`ranking_training.experiments`, act on the registry; and the result as a person reads it."""

from __future__ import annotations

from typing import Any

from ranking_features.workload_env import TrainingEnv

from ranking_training.experiment_registry import (
    RunningExperiment,
    apply_decision,
    find_running_experiment,
    mlflow_call,
)
from ranking_training.experiment_settings import ExperimentJobError, JobSettings
from ranking_training.job_env import iso_utc


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
        "evaluated_at": iso_utc(settings.now),
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
    result = {**base, **_judged(spec, stats, decision, running)}
    if apply:
        mlflow_call(
            settings,
            "record the decision",
            lambda: apply_decision(client, settings, spec, decision),
        )
        result["applied"] = True
        result["action"] = _action(decision.kind, spec)
    return result


def _judged(spec: Any, stats: Any, decision: Any, running: RunningExperiment) -> dict[str, Any]:
    """An evaluated experiment, as plain data: its arms, the interval, the decision."""
    return {
        "running": True,
        "experiment_id": spec.experiment_id,
        "champion_version": spec.champion_version,
        "challenger_version": spec.challenger_version,
        "started_at": iso_utc(spec.started_at),
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
            f"the lake {lake_uri} does not exist; check {TrainingEnv.variable('lake_uri')} "
            "(or --lake-uri): "
            "the service ships its impressions and feedback there"
        )
