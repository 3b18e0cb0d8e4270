"""The drift job's settings, from its flags, the brand file and the workload environment."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ranking_features.mlflow_names import (
    registered_model_name,
)

from ranking_training.errors import TrainingError
from ranking_training.job_env import missing_workload_argument

# The brand schema's defaults (ranking_features.brand.Monitoring); the CronJob passes the brand's.
DEFAULT_PSI_THRESHOLD = 0.2


DEFAULT_WINDOW_HOURS = 24


DEFAULT_MIN_ROWS = 1000


class DriftJobError(TrainingError):
    """The drift job cannot run; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class DriftSettings:
    brand: str
    tracking_uri: str
    lake_uri: str
    model_name: str
    psi_threshold: float
    min_rows: int
    since: datetime
    until: datetime


def settings_from_args(args: argparse.Namespace) -> DriftSettings:
    """The job's settings; a ValueError names the missing or invalid one."""
    missing = missing_workload_argument(args)
    if missing:
        raise ValueError(missing)
    threshold, window_hours, min_rows = (
        DEFAULT_PSI_THRESHOLD,
        DEFAULT_WINDOW_HOURS,
        DEFAULT_MIN_ROWS,
    )
    if args.brand_file is not None:
        threshold, window_hours, min_rows = _brand_file_settings(args.brand_file, args.env)
    threshold = threshold if args.psi_threshold is None else args.psi_threshold
    window_hours = window_hours if args.window_hours is None else args.window_hours
    min_rows = min_rows if args.min_rows is None else args.min_rows
    if not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"--psi-threshold: a number above 0, got {threshold}")
    if window_hours < 1:
        raise ValueError(f"--window-hours: at least 1, got {window_hours}")
    if min_rows < 1:
        raise ValueError(f"--min-rows: at least 1, got {min_rows}")
    now = args.now or datetime.now(UTC)
    since = args.since or now - timedelta(hours=window_hours)
    if since >= now:
        raise ValueError(f"--since: before --now ({now.isoformat()}), got {since.isoformat()}")
    return DriftSettings(
        brand=args.brand,
        tracking_uri=args.tracking_uri,
        lake_uri=args.lake_uri,
        model_name=args.model_name or registered_model_name(args.brand),
        psi_threshold=threshold,
        min_rows=min_rows,
        since=since,
        until=now,
    )


def _brand_file_settings(path: Path, env: str) -> tuple[float, int, int]:
    from ranking_features.brand import load_brand

    try:
        monitoring = load_brand(path).for_environment(env).monitoring
    except Exception as error:  # the brand loader's errors already name file and field
        raise ValueError(str(error)) from error
    return monitoring.drift_psi_threshold, monitoring.drift_window_hours, monitoring.drift_min_rows
