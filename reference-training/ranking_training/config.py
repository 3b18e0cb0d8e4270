"""The training job's configuration: the environment contract (docs/architecture.md,
"Contracts"), overridden by flags."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ranking_features.mlflow_names import registered_model_name, training_experiment_name


@dataclass(frozen=True)
class LightGBMSettings:
    """LambdaRank hyper-parameters (the brand file's `training.lightgbm`)."""

    num_leaves: int = 31
    learning_rate: float = 0.05
    num_boost_round: int = 300
    min_data_in_leaf: int = 20
    feature_fraction: float = 0.9
    early_stopping_rounds: int = 30
    # 0: LightGBM's default (all cores); pin it where the job shares its cores.
    num_threads: int = 0

    def booster_params(self) -> dict[str, Any]:
        """Parameters for `lgb.train` (rounds and early stopping are passed separately)."""
        return {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10],
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "num_threads": self.num_threads,
            "seed": 17,
            "deterministic": True,
            "verbosity": -1,
        }


@dataclass(frozen=True)
class TrainingConfig:
    """Everything one training run depends on."""

    brand: str
    lake_uri: str
    tracking_uri: str
    data_from: date
    data_to: date
    env: str = "dev"
    model_name: str = ""
    lightgbm: LightGBMSettings = field(default_factory=LightGBMSettings)
    promotion_metric: str = "ndcg@10"
    min_gain: float = 0.005
    workers: int = 0
    dask_scheduler: str = ""
    # Label of a dismissed item; LightGBM needs labels >= 0, so a dismiss can only be "not
    # relevant" (0) unless clicks are shifted, which we do not do.
    dismiss_label: int = 0
    # Length of the early-stopping window and of the gate window (docs/architecture.md).
    validation_days: int = 1
    git_sha: str = "unknown"
    # Label maturity: impressions newer than run_at - label_delay_hours are left out.
    label_delay_hours: int = 6
    # The run's time; None is now. Tests and backfills pin it.
    run_at: datetime | None = None
    # The counterfactual gate (`training.promotion`).
    conversion_weight: float = 0.0
    margin: float = 0.01
    min_exploration_requests: int = 300

    @property
    def mature_before(self) -> float:
        """Epoch seconds: impressions at or after this are too new for their labels."""
        run_at = self.run_at or datetime.now(UTC)
        return (run_at - timedelta(hours=self.label_delay_hours)).timestamp()

    @property
    def registered_model(self) -> str:
        return self.model_name or registered_model_name(self.brand)

    @property
    def experiment(self) -> str:
        return training_experiment_name(self.brand)


def zoned_time(text: str) -> datetime:
    """A command-line time: ISO 8601 with a time zone (the jobs' `--run-at`, `--now`)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2025-01-31T12:00:00+00:00, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"expected a time zone (e.g. +00:00 or Z), got {text!r}")
    return moment
