"""The training job: data -> features -> split -> train -> evaluate -> gate -> register.

Each stage lives in its own module; this one only runs them in order, times them, and tracks
the run in MLflow experiment `recplat/<brand>`. The stages run on day partitions
(`ranking_training.cluster`): in this process, or on Dask workers with `--workers` or
`--dask-scheduler`; either way this process holds counts, the boosters and the gate's explore
requests, never the window's rows. Bad data stops the job before any MLflow run
is created, so nothing is registered. Every version that passes the offline checks is
registered; the gate's outcome decides its alias (docs/architecture.md, "Promotion gate").
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

from ranking_features import FEATURE_VERSION, FeatureSnapshot, feature_spec
from ranking_features.drift import DISTRIBUTION_ARTIFACT
from ranking_features.mlflow_names import (
    DECISION_ARTIFACT,
    EVALUATION_ARTIFACT_DIR,
    FEATURE_IMPORTANCE_ARTIFACT,
    GATE_BASIS_TAG,
    GATE_REASON_TAG,
    GATE_TAG,
    biased_metric_key,
)

from ranking_training.cluster import TrainingCluster, training_cluster
from ranking_training.config import TrainingConfig
from ranking_training.data import LakeData
from ranking_training.day_features import build_features
from ranking_training.drift import write_training_distribution
from ranking_training.errors import TrainingError
from ranking_training.evaluate import Evaluation, popularity_scores, write_report
from ranking_training.gate import (
    CHAMPION_TARGET,
    NEW,
    POPULARITY,
    GateDecision,
    GateRule,
    Scorer,
    as_served,
    decide_counterfactual,
    decide_without_exploration,
    estimate_targets,
    target_positions,
)
from ranking_training.lake_window import read_window
from ranking_training.registry import (
    FINGERPRINT_TAG,
    Champion,
    apply_gate,
    find_version_with_fingerprint,
    load_champion,
    log_and_register,
)
from ranking_training.split import WindowBounds
from ranking_training.train import fit_on_cluster
from ranking_training.window_parts import WindowParts, split_days


@dataclass
class JobResult:
    """What a run did: the version it registered (or found), the evaluation and the decision."""

    version: str | None
    run_id: str | None
    evaluation: Evaluation | None
    decision: GateDecision | None
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
    with training_cluster(config.workers, config.dask_scheduler) as cluster:
        return _run(config, cluster, say)


def _run(config: TrainingConfig, cluster: TrainingCluster, say: Callable[[str], None]) -> JobResult:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(config.tracking_uri)
    client = MlflowClient()
    timings: dict[str, float] = {}
    say(
        f"{config.brand}: training on {config.data_from} .. {config.data_to} from {config.lake_uri}"
    )

    with _timed(timings, "load", say):
        window = read_window(
            cluster,
            config.lake_uri,
            config.data_from,
            config.data_to,
            config.mature_before,
            config.dismiss_label,
        )
    fingerprint = _fingerprint(window.fingerprint(), config)
    existing = find_version_with_fingerprint(client, config.registered_model, fingerprint)
    if existing is not None:
        reason = (
            f"version {existing.version} of {config.registered_model} was trained on the same "
            "data and configuration; nothing to do"
        )
        say(f"{config.brand}: {reason}")
        return JobResult(existing.version, existing.run_id, None, None, reason, timings)

    with _timed(timings, "features", say):
        features = build_features(window, config.validation_days)
        windows = split_days(features, config.validation_days)
    snapshot = features.snapshot
    counts = {
        key: window.counts[key]
        for key in (
            "impressions",
            "immature_impressions",
            "feedback_events",
            "duplicates_dropped",
            "unmatched_feedback",
        )
    } | windows.counts
    with _timed(timings, "fit", say):
        booster = fit_on_cluster(cluster, windows.train, windows.early_stopping, config.lightgbm)
    with _timed(timings, "evaluate", say):
        champion, note = load_champion(client, config.registered_model)
        scorable = champion.booster if champion is not None else None
        judged = windows.evaluate(booster, scorable)
        evaluation, failures = judged.evaluation, judged.failures
        if note:
            evaluation.notes.append(note)
        if champion is not None and scorable is not None:
            evaluation.champion_version = champion.version
    with _timed(timings, "gate", say):
        decision = _judge(config, windows, booster, champion, evaluation)
    counts["explore_requests"] = decision.exploration_requests

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
                "label_delay_hours": config.label_delay_hours,
                "mature_before": _span(window.window_end, window.window_end)[1:17],
                "train_window": _span(windows.train_start, windows.early_stopping_start),
                "early_stopping_window": _span(windows.early_stopping_start, windows.gate_start),
                "gate_window": _span(windows.gate_start, windows.gate_end),
                "conversion_weight": config.conversion_weight,
                "margin": config.margin,
                "min_exploration_requests": config.min_exploration_requests,
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
                mlflow.log_metrics({biased_metric_key(ranker, k): v for k, v in metrics.items()})
        mlflow.log_metrics(decision.metrics())
        mlflow.log_dict(_importance(booster), FEATURE_IMPORTANCE_ARTIFACT)
        report_dir = Path(scratch) / EVALUATION_ARTIFACT_DIR
        summary = {"title": f"{config.brand} {config.data_from}..{config.data_to}", "rows": counts}
        for path in write_report(evaluation, summary, report_dir):
            mlflow.log_artifact(str(path), artifact_path=EVALUATION_ARTIFACT_DIR)

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
        # What drift monitoring compares served vectors with (features/distribution.json).
        (feature_dir / Path(DISTRIBUTION_ARTIFACT).name).write_text(
            windows.on_gate_data(_distribution, windows.bounds, snapshot, booster),
            encoding="utf-8",
        )
        version = log_and_register(
            booster,
            model_name=config.registered_model,
            example=judged.example,
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
        apply_gate(client, config.registered_model, version.version, decision)
        mlflow.log_dict(decision.tags(), DECISION_ARTIFACT)
        mlflow.set_tags(
            {key: decision.tags()[key] for key in (GATE_TAG, GATE_REASON_TAG, GATE_BASIS_TAG)}
        )
        mlflow.set_tag("model_version", version.version)
        say(
            f"{config.brand}: registered {config.registered_model} v{version.version}; "
            f"gate {decision.outcome.value}: {decision.reason}"
        )
        say("  " + _table(evaluation))
        return JobResult(
            version.version, run.info.run_id, evaluation, decision, None, timings, counts
        )


def _judge(
    config: TrainingConfig,
    windows: WindowParts,
    booster: Any,
    champion: Champion | None,
    evaluation: Evaluation,
) -> GateDecision:
    """The gate's decision: counterfactual on the gate window's explore requests when there
    are enough of them, else the no-exploration outcome."""
    rule = GateRule(
        conversion_weight=config.conversion_weight,
        margin=config.margin,
        min_exploration_requests=config.min_exploration_requests,
        metric=config.promotion_metric,
    )
    champion_version = champion.version if champion is not None else None
    exploration = windows.exploration()
    requests = exploration.n_requests if exploration is not None else 0
    if exploration is None or requests < rule.min_exploration_requests:
        return decide_without_exploration(
            requests,
            rule,
            champion_serves=champion is not None,
            champion_version=champion_version,
            biased_model=evaluation.model,
            biased_popularity=evaluation.popularity,
        )
    pool = windows.pool_features(exploration)
    scorers: dict[str, Scorer] = {NEW: _booster_scorer(booster), POPULARITY: popularity_scores}
    if champion is not None and champion.booster is not None:
        scorers[CHAMPION_TARGET] = _booster_scorer(champion.booster)
    positions = {name: target_positions(exploration, pool, s) for name, s in scorers.items()}
    if champion_version is not None and CHAMPION_TARGET in positions:
        positions[CHAMPION_TARGET] = as_served(
            exploration, champion_version, positions[CHAMPION_TARGET]
        )
    return decide_counterfactual(
        estimate_targets(exploration, positions, rule),
        rule,
        champion_serves=champion is not None,
        champion_version=champion_version,
    )


def _distribution(
    data: LakeData, bounds: WindowBounds, snapshot: FeatureSnapshot, booster: Any
) -> str:
    """features/distribution.json, written where the gate days are (`on_gate_data`): what
    `booster` returns on the gate window's requests (`ranking_training.drift`)."""
    with tempfile.TemporaryDirectory() as scratch:
        write_training_distribution(data, bounds, snapshot, booster, Path(scratch))
        return (Path(scratch) / Path(DISTRIBUTION_ARTIFACT).name).read_text(encoding="utf-8")


def _booster_scorer(booster: Any) -> Scorer:
    def scores(features: Any) -> Any:
        return booster.predict(features, num_iteration=booster.best_iteration or None)

    return scores


def _span(start: float, end: float) -> str:
    from datetime import UTC, datetime

    def moment(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M")

    return f"[{moment(start)}, {moment(end)})"


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
