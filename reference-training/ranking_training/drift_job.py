"""`ranking-experiments drift`: has the traffic the champion serves moved away from the data it
was trained on? Judged feature by feature, recorded on the champion's registry version.

The command line around `ranking_features.drift` (docs/architecture.md, "Feature drift"); its
settings are `drift_settings`, the sample's reading `drift_sample`, one evaluation
`drift_evaluation`:

- the champion is the version behind the `champion` alias; its training run's artifact
  `features/distribution.json` (`ranking_training.drift`) is the reference;
- the served side is the service's feature sample in the lake (`events/features/`) of the
  last `--window-hours` (or since `--since`), the rows the champion's version scored;
- each feature's population stability index is recorded on the champion's version as tags
  (`drift.psi.<feature>`, `drift.psi_threshold`, `drift.evaluated_at`, `drift.sample_rows`,
  `drift.window`). The ranking service reads them and exports
  `recplat_feature_drift_psi{brand,feature,model_version}` and
  `recplat_feature_drift_psi_threshold{brand}` (`ranking_service.drift_gauges`): a CronJob
  cannot be scraped once it ends, and training's identity may read the lake but write only
  to MLflow. Prometheus keeps the history; the brand's alert `RecplatFeatureDrift` fires on
  a feature past the threshold.

With fewer than `--min-rows` sampled rows there is no verdict: the PSI tags are removed (no
series, no alert) rather than judged on noise. Exit codes: 0 judged, or nothing to judge (no
champion, too few rows); 1 it could not run (lake, MLflow, no distribution stored with the
champion, unreadable sample files); 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ranking_features.mlflow_credentials import (
    MlflowCredentialsError,
    configure_mlflow_credentials,
)

from ranking_training.config import zoned_time
from ranking_training.drift_evaluation import describe, run
from ranking_training.drift_settings import (
    DEFAULT_MIN_ROWS,
    DEFAULT_PSI_THRESHOLD,
    DEFAULT_WINDOW_HOURS,
    settings_from_args,
)
from ranking_training.errors import TrainingError
from ranking_training.job_env import MLFLOW_ENV_DEFAULTS, add_workload_arguments

PROGRAM = "ranking-experiments drift"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Compare the champion's served feature sample with its training "
        "distribution (PSI per feature) and record the result on its registry version.",
    )
    add_workload_arguments(parser)
    parser.add_argument("--brand-file", type=Path, help="take the monitoring settings from it")
    parser.add_argument(
        "--psi-threshold",
        type=float,
        help=f"a feature above it drifted (default {DEFAULT_PSI_THRESHOLD})",
    )
    parser.add_argument(
        "--window-hours",
        type=int,
        help=f"hours of sampled rows to compare, up to --now (default {DEFAULT_WINDOW_HOURS})",
    )
    parser.add_argument(
        "--min-rows",
        type=int,
        help=f"fewest sampled rows to judge on (default {DEFAULT_MIN_ROWS})",
    )
    parser.add_argument(
        "--since", type=zoned_time, help="compare rows from this time on (instead of a window)"
    )
    parser.add_argument(
        "--now", type=zoned_time, help="the evaluation's time, ISO 8601 with a zone (default now)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name, value in MLFLOW_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    try:
        configure_mlflow_credentials()
        settings = settings_from_args(args)
    except (MlflowCredentialsError, ValueError) as error:
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        return 2
    try:
        result = run(settings)
    except TrainingError as error:
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        return 1
    for feature, rows in result.get("skipped_rows", {}).items():
        print(
            f"{PROGRAM}: warning: {rows} sampled row(s) skipped: {feature} is null or not "
            "finite (the service writes finite float32 vectors; look for a corrupt file)",
            file=sys.stderr,
        )
    print(json.dumps(result, indent=2) if args.json else describe(result))
    return 0
