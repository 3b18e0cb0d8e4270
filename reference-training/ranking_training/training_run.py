"""What a training run records in MLflow: its tags and parameters, its metrics and evaluation
report, and the feature artifacts registered with the model.

`ranking_training.job` runs the stages and calls these inside the active run; keeping the
logging here leaves the job to say what happens in which order. The names recorded are part of
the contract (docs/architecture.md, "Promotion gate" and "Feature drift").
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ranking_features import FEATURE_VERSION, FeatureSnapshot, feature_spec
from ranking_features.drift import DISTRIBUTION_ARTIFACT
from ranking_features.mlflow_names import (
    DECISION_ARTIFACT,
    EVALUATION_ARTIFACT_DIR,
    FEATURE_IMPORTANCE_ARTIFACT,
    FINGERPRINT_TAG,
    GATE_BASIS_TAG,
    GATE_REASON_TAG,
    GATE_TAG,
    biased_metric_key,
)

from ranking_training.config import TrainingConfig
from ranking_training.data import LakeData
from ranking_training.drift import write_training_distribution
from ranking_training.evaluate import write_report
from ranking_training.gate import GateDecision
from ranking_training.split import WindowBounds
from ranking_training.window_parts import GateEvaluation, WindowParts


@dataclass
class TrainedModel:
    """What the stages produced for one run: the windows, the booster, its evaluation on the
    gate window and the gate's decision, and the row counts."""

    window_end: float
    windows: WindowParts
    snapshot: FeatureSnapshot
    booster: Any
    judged: GateEvaluation
    decision: GateDecision
    counts: dict[str, int]


def log_run_inputs(config: TrainingConfig, fingerprint: str, trained: TrainedModel) -> None:
    """The run's tags and parameters: who trained on which windows with which settings."""
    import mlflow

    windows = trained.windows
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
            "mature_before": _span(trained.window_end, trained.window_end)[1:17],
            "train_window": _span(windows.train_start, windows.early_stopping_start),
            "early_stopping_window": _span(windows.early_stopping_start, windows.gate_start),
            "gate_window": _span(windows.gate_start, windows.gate_end),
            "conversion_weight": config.conversion_weight,
            "margin": config.margin,
            "min_exploration_requests": config.min_exploration_requests,
            "workers": config.workers,
            "feature_version": FEATURE_VERSION,
            "best_iteration": trained.booster.best_iteration or trained.booster.current_iteration(),
        }
    )


def log_run_results(
    config: TrainingConfig, trained: TrainedModel, timings: dict[str, float], scratch: Path
) -> None:
    """Row counts, stage timings, the biased metrics, the gate's figures, the feature
    importance and the evaluation report."""
    import mlflow

    evaluation = trained.judged.evaluation
    mlflow.log_metrics({f"rows.{k}": v for k, v in trained.counts.items()})
    mlflow.log_metrics({f"seconds.{k}": v for k, v in timings.items()})
    for ranker, metrics in (
        ("model", evaluation.model),
        ("popularity", evaluation.popularity),
        ("champion", evaluation.champion),
    ):
        if metrics:
            mlflow.log_metrics({biased_metric_key(ranker, k): v for k, v in metrics.items()})
    mlflow.log_metrics(trained.decision.metrics())
    mlflow.log_dict(_importance(trained.booster), FEATURE_IMPORTANCE_ARTIFACT)
    report_dir = scratch / EVALUATION_ARTIFACT_DIR
    summary = {
        "title": f"{config.brand} {config.data_from}..{config.data_to}",
        "rows": trained.counts,
    }
    for path in write_report(evaluation, summary, report_dir):
        mlflow.log_artifact(str(path), artifact_path=EVALUATION_ARTIFACT_DIR)


def write_feature_artifacts(trained: TrainedModel, feature_dir: Path) -> None:
    """The snapshot, the feature spec and the gate window's feature distribution, registered
    with the model under `features/`."""
    feature_dir.mkdir()
    trained.snapshot.save(feature_dir / "snapshot.json")
    (feature_dir / "spec.json").write_text(json.dumps(feature_spec(), indent=2), encoding="utf-8")
    windows = trained.windows
    # What drift monitoring compares served vectors with (features/distribution.json).
    (feature_dir / Path(DISTRIBUTION_ARTIFACT).name).write_text(
        windows.on_gate_data(_distribution, windows.bounds, trained.snapshot, trained.booster),
        encoding="utf-8",
    )


def log_decision(decision: GateDecision, version: str) -> None:
    """The gate's decision on the run: its tags as an artifact, the outcome as run tags."""
    import mlflow

    mlflow.log_dict(decision.tags(), DECISION_ARTIFACT)
    mlflow.set_tags(
        {key: decision.tags()[key] for key in (GATE_TAG, GATE_REASON_TAG, GATE_BASIS_TAG)}
    )
    mlflow.set_tag("model_version", version)


def _distribution(
    data: LakeData, bounds: WindowBounds, snapshot: FeatureSnapshot, booster: Any
) -> str:
    """features/distribution.json, written where the gate days are (`on_gate_data`): what
    `booster` returns on the gate window's requests (`ranking_training.drift`)."""
    with tempfile.TemporaryDirectory() as scratch:
        write_training_distribution(data, bounds, snapshot, booster, Path(scratch))
        return (Path(scratch) / Path(DISTRIBUTION_ARTIFACT).name).read_text(encoding="utf-8")


def _span(start: float, end: float) -> str:
    def moment(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M")

    return f"[{moment(start)}, {moment(end)})"


def _importance(booster: Any) -> dict[str, float]:
    gains = booster.feature_importance(importance_type="gain")
    return {name: float(gain) for name, gain in zip(booster.feature_name(), gains, strict=True)}
