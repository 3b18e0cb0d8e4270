"""The experiment job's settings, from its flags, the brand file and the workload environment."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ranking_features.mlflow_names import (
    registered_model_name,
)
from ranking_features.workload_env import TrainingEnv

from ranking_training.errors import TrainingError
from ranking_training.job_env import missing_workload_argument

CHALLENGER_TRAFFIC = TrainingEnv.variable("challenger_traffic")


DEFAULT_MAX_EXPERIMENT_DAYS = 14


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


def settings_from_args(args: argparse.Namespace) -> JobSettings:
    """The job's settings; a ValueError names the missing or invalid one."""
    missing = missing_workload_argument(args)
    if missing:
        raise ValueError(missing)
    traffic, max_days = _brand_file_settings(args.brand_file, args.env)
    if args.challenger_traffic is not None:
        traffic = args.challenger_traffic
    elif traffic is None:
        traffic = args.env_challenger_traffic
    if traffic is None:
        raise ValueError(
            "the challenger's share of users is unknown: pass --challenger-traffic, "
            f"--brand-file or {CHALLENGER_TRAFFIC} (the service's serving.challenger_traffic)"
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
