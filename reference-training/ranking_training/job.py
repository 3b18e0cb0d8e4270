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

from ranking_features import FEATURE_VERSION

from ranking_training.cluster import TrainingCluster, training_cluster
from ranking_training.config import TrainingConfig
from ranking_training.day_features import build_features
from ranking_training.errors import TrainingError
from ranking_training.evaluate import Evaluation, popularity_scores
from ranking_training.gate import (
    CHAMPION_TARGET,
    NEW,
    POPULARITY,
    GateDecision,
    GateRule,
    decide_counterfactual,
    decide_without_exploration,
    estimate_targets,
)
from ranking_training.gate_exploration import Scorer, as_served, target_positions
from ranking_training.lake_window import LakeWindow, read_window
from ranking_training.registry import (
    FINGERPRINT_TAG,
    Champion,
    apply_gate,
    find_version_with_fingerprint,
    load_champion,
    log_and_register,
)
from ranking_training.train import fit_on_cluster
from ranking_training.training_run import (
    TrainedModel,
    log_decision,
    log_run_inputs,
    log_run_results,
    write_feature_artifacts,
)
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


# The window's row counts the run logs (`rows.*` metrics).
_WINDOW_COUNTS = (
    "impressions",
    "immature_impressions",
    "feedback_events",
    "duplicates_dropped",
    "unmatched_feedback",
)


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

    trained = _train_and_judge(config, cluster, client, window, timings, say)
    return _record_and_register(config, client, fingerprint, trained, timings, say)


def _train_and_judge(
    config: TrainingConfig,
    cluster: TrainingCluster,
    client: Any,
    window: LakeWindow,
    timings: dict[str, float],
    say: Callable[[str], None],
) -> TrainedModel:
    """Features, fit, the biased evaluation against the champion, and the gate, each timed."""
    with _timed(timings, "features", say):
        features = build_features(window, config.validation_days)
        windows = split_days(features, config.validation_days)
    counts = {key: window.counts[key] for key in _WINDOW_COUNTS} | windows.counts
    with _timed(timings, "fit", say):
        booster = fit_on_cluster(cluster, windows.train, windows.early_stopping, config.lightgbm)
    with _timed(timings, "evaluate", say):
        champion, note = load_champion(client, config.registered_model)
        scorable = champion.booster if champion is not None else None
        judged = windows.evaluate(booster, scorable)
        if note:
            judged.evaluation.notes.append(note)
        if champion is not None and scorable is not None:
            judged.evaluation.champion_version = champion.version
    with _timed(timings, "gate", say):
        decision = _judge(config, windows, booster, champion, judged.evaluation)
    counts["explore_requests"] = decision.exploration_requests
    return TrainedModel(
        window.window_end, windows, features.snapshot, booster, judged, decision, counts
    )


def _record_and_register(
    config: TrainingConfig,
    client: Any,
    fingerprint: str,
    trained: TrainedModel,
    timings: dict[str, float],
    say: Callable[[str], None],
) -> JobResult:
    """One MLflow run: what went in and came out; then, if the offline checks pass, the
    registered version with the gate's alias. Failed checks raise after logging."""
    import mlflow

    evaluation, decision = trained.judged.evaluation, trained.decision
    mlflow.set_experiment(config.experiment)
    with (
        mlflow.start_run(run_name=f"{config.brand}-{config.data_to}") as run,
        tempfile.TemporaryDirectory() as scratch,
    ):
        log_run_inputs(config, fingerprint, trained)
        log_run_results(config, trained, timings, Path(scratch))
        if trained.judged.failures:
            mlflow.set_tag("gate", "rejected")
            raise TrainingError(
                f"{config.brand}: offline checks failed: {'; '.join(trained.judged.failures)}; "
                "nothing registered"
            )
        feature_dir = Path(scratch) / "features"
        write_feature_artifacts(trained, feature_dir)
        version = log_and_register(
            trained.booster,
            model_name=config.registered_model,
            example=trained.judged.example,
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
        log_decision(decision, version.version)
        say(
            f"{config.brand}: registered {config.registered_model} v{version.version}; "
            f"gate {decision.outcome.value}: {decision.reason}"
        )
        say("  " + _table(evaluation))
        return JobResult(
            version.version, run.info.run_id, evaluation, decision, None, timings, trained.counts
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


def _booster_scorer(booster: Any) -> Scorer:
    def scores(features: Any) -> Any:
        return booster.predict(features, num_iteration=booster.best_iteration or None)

    return scores


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


def _table(evaluation: Evaluation) -> str:
    rows = [("model", evaluation.model), ("popularity", evaluation.popularity)]
    if evaluation.champion is not None:
        rows.append((f"champion v{evaluation.champion_version}", evaluation.champion))
    names = ("ndcg@1", "ndcg@3", "ndcg@5", "ndcg@10", "map@10", "mrr")
    lines = [f"{'':<14}" + "".join(f"{n:>9}" for n in names)]
    lines += [f"{r:<14}" + "".join(f"{m[n]:>9.4f}" for n in names) for r, m in rows]
    return "\n  ".join(lines)
