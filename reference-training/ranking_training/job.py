"""The training job: data -> features -> split -> train -> evaluate -> register -> gate.

Each stage lives in its own module; this one only runs them in order, times them, and tracks
the run in MLflow experiment `recplat/<brand>`. Bad data stops the job before any MLflow run
is created, so nothing is registered.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ranking_features import FEATURE_VERSION, feature_spec

from ranking_training.config import TrainingConfig
from ranking_training.data import load_lake
from ranking_training.errors import TrainingError
from ranking_training.evaluate import (
    Evaluation,
    evaluate,
    offline_check_failures,
    score,
    write_report,
)
from ranking_training.features import build_training_matrix
from ranking_training.metrics import ranking_metrics
from ranking_training.registry import (
    FINGERPRINT_TAG,
    Decision,
    apply_decision,
    decide,
    find_version_with_fingerprint,
    load_champion,
    log_and_register,
)
from ranking_training.split import split_by_time
from ranking_training.train import train_in_process, train_on_dask


@dataclass
class JobResult:
    """What a run did: the version it registered (or found), the evaluation and the decision."""

    version: str | None
    run_id: str | None
    evaluation: Evaluation | None
    decision: Decision | None
    skipped_reason: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


@contextmanager
def _timed(timings: dict[str, float], stage: str, say: Callable[[str], None]) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[stage] = time.perf_counter() - started
    say(f"  {stage:<9} {timings[stage]:7.2f} s")


def run_training(config: TrainingConfig, say: Callable[[str], None] = print) -> JobResult:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(config.tracking_uri)
    client = MlflowClient()
    timings: dict[str, float] = {}
    say(
        f"{config.brand}: training on {config.data_from} .. {config.data_to} from {config.lake_uri}"
    )

    with _timed(timings, "load", say):
        data = load_lake(config.lake_uri, config.data_from, config.data_to)
    fingerprint = _fingerprint(data.fingerprint(), config)
    existing = find_version_with_fingerprint(client, config.registered_model, fingerprint)
    if existing is not None:
        reason = (
            f"version {existing.version} of {config.registered_model} was trained on the same "
            "data and configuration; nothing to do"
        )
        say(f"{config.brand}: {reason}")
        return JobResult(existing.version, existing.run_id, None, None, reason, timings)

    with _timed(timings, "features", say):
        matrix, snapshot = build_training_matrix(data, config.dismiss_label)
        train, valid = split_by_time(
            matrix, data.window_start, data.window_end, config.validation_days
        )
    counts = {
        "impressions": len(data.impressions),
        "feedback_events": len(data.feedback),
        "duplicates_dropped": data.duplicates_dropped,
        "unmatched_feedback": data.unmatched_feedback,
        "train_rows": len(train.labels),
        "train_requests": train.n_requests,
        "valid_rows": len(valid.labels),
        "valid_requests": valid.n_requests,
    }
    with _timed(timings, "fit", say):
        if config.workers > 0 or config.dask_scheduler:
            booster = train_on_dask(train, config.lightgbm, config.workers, config.dask_scheduler)
        else:
            booster = train_in_process(train, valid, config.lightgbm)
    with _timed(timings, "evaluate", say):
        evaluation = evaluate(booster, valid)
        champion, note = load_champion(client, config.registered_model)
        if note:
            evaluation.notes.append(note)
        if champion is not None:
            evaluation.champion_version = champion.version
            evaluation.champion = ranking_metrics(
                valid.labels, score(champion.booster, valid), valid.group_sizes
            )
        failures = offline_check_failures(evaluation, booster, valid)

    mlflow.set_experiment(config.experiment)
    with (
        mlflow.start_run(run_name=f"{config.brand}-{config.data_to}") as run,
        tempfile.TemporaryDirectory() as scratch,
    ):
        mlflow.set_tags(
            {
                "brand": config.brand,
                "env": config.env,
                "git_sha": config.git_sha,
                FINGERPRINT_TAG: fingerprint,
                "trainer": "dask" if config.workers or config.dask_scheduler else "in-process",
            }
        )
        mlflow.log_params(
            {
                **asdict(config.lightgbm),
                "data_from": str(config.data_from),
                "data_to": str(config.data_to),
                "promotion_metric": config.promotion_metric,
                "min_gain": config.min_gain,
                "workers": config.workers,
                "feature_version": FEATURE_VERSION,
                "best_iteration": booster.best_iteration or booster.current_iteration(),
            }
        )
        mlflow.log_metrics({f"rows.{k}": v for k, v in counts.items()})
        mlflow.log_metrics({f"seconds.{k}": v for k, v in timings.items()})
        for ranker, metrics in (
            ("model", evaluation.model),
            ("popularity", evaluation.popularity),
            ("champion", evaluation.champion),
        ):
            if metrics:
                mlflow.log_metrics(
                    {f"{ranker}.{k.replace('@', '_at_')}": v for k, v in metrics.items()}
                )
        mlflow.log_dict(_importance(booster), "evaluation/feature_importance.json")
        report_dir = Path(scratch) / "evaluation"
        summary = {"title": f"{config.brand} {config.data_from}..{config.data_to}", "rows": counts}
        for path in write_report(evaluation, summary, report_dir):
            mlflow.log_artifact(str(path), artifact_path="evaluation")

        if failures:
            mlflow.set_tag("gate", "rejected")
            raise TrainingError(
                f"{config.brand}: offline checks failed: {'; '.join(failures)}; nothing registered"
            )

        feature_dir = Path(scratch) / "features"
        feature_dir.mkdir()
        snapshot.save(feature_dir / "snapshot.json")
        (feature_dir / "spec.json").write_text(
            json.dumps(feature_spec(), indent=2), encoding="utf-8"
        )
        version = log_and_register(
            booster,
            model_name=config.registered_model,
            example=valid.features[:50],
            feature_dir=feature_dir,
            version_tags={
                "brand": config.brand,
                "env": config.env,
                "data_from": str(config.data_from),
                "data_to": str(config.data_to),
                "git_sha": config.git_sha,
                FINGERPRINT_TAG: fingerprint,
            },
        )
        decision = decide(
            config.promotion_metric,
            config.min_gain,
            evaluation.model,
            evaluation.popularity,
            evaluation.champion,
            evaluation.champion_version,
        )
        apply_decision(client, config.registered_model, version.version, decision)
        mlflow.log_dict(decision.to_dict(), "evaluation/decision.json")
        mlflow.set_tag("gate", "promoted" if decision.promote else "held")
        mlflow.set_tag("gate.reason", decision.reason)
        mlflow.set_tag("model_version", version.version)
        verdict = "PROMOTED to champion" if decision.promote else "champion unchanged"
        say(
            f"{config.brand}: registered {config.registered_model} v{version.version} as "
            f"challenger; {verdict}: {decision.reason}"
        )
        say("  " + _table(evaluation))
        return JobResult(
            version.version, run.info.run_id, evaluation, decision, None, timings, counts
        )


def _fingerprint(data_fingerprint: str, config: TrainingConfig) -> str:
    """Data plus everything that shapes the model: same fingerprint, same model."""
    import hashlib

    shape = {
        "data": data_fingerprint,
        "lightgbm": asdict(config.lightgbm),
        "feature_version": FEATURE_VERSION,
        "dask": bool(config.workers or config.dask_scheduler),
        "dismiss_label": config.dismiss_label,
        "validation_days": config.validation_days,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:32]


def _importance(booster: Any) -> dict[str, float]:
    gains = booster.feature_importance(importance_type="gain")
    return {name: float(gain) for name, gain in zip(booster.feature_name(), gains, strict=True)}


def _table(evaluation: Evaluation) -> str:
    rows = [("model", evaluation.model), ("popularity", evaluation.popularity)]
    if evaluation.champion is not None:
        rows.append((f"champion v{evaluation.champion_version}", evaluation.champion))
    names = ("ndcg@1", "ndcg@3", "ndcg@5", "ndcg@10", "map@10", "mrr")
    lines = [f"{'':<14}" + "".join(f"{n:>9}" for n in names)]
    lines += [f"{r:<14}" + "".join(f"{m[n]:>9.4f}" for n in names) for r, m in rows]
    return "\n  ".join(lines)
