"""`ranking-experiments`: find a brand's running online experiment, judge it, act on the verdict.

The statistics are `ranking_training.experiments` (pure functions); this module is the command
line around them (docs/architecture.md, "Online experiments"), its settings are
`experiment_settings`, the registry side `experiment_registry`, one evaluation
`experiment_evaluation`:

- the running experiment is the version behind the `challenger` alias with its start tags
  (`experiment_id`, `experiment.started_at`, `experiment.champion_version`, set by
  `ranking_training.registry.start_experiment`);
- `evaluate` reads the lake, decides, and applies the decision to the registry: promote moves
  `champion` to the challenger and removes `challenger`; stop removes `challenger`; continue
  changes nothing. Every evaluation is a run in `recplat/<brand>/experiments` with the figures,
  and the version gets `experiment.decision` and `experiment.evaluated_at` tags;
- `status` does the same reading and deciding, and changes nothing.

Configured like `ranking-train` (`ranking_training.job_env`: flags, else the workload
environment's `TrainingEnv`, and on AKS the MLflow writer's basic auth); the brand's
`serving.challenger_traffic` and `training.promotion.max_experiment_days` come from flags, from
`--brand-file`, or (the share) from the service's own variable, RECPLAT_CHALLENGER_TRAFFIC.
Exit codes: 0 done (including "no experiment running"), 1 the evaluation could not run (lake,
MLflow), 2 bad usage.
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
from ranking_training.errors import TrainingError
from ranking_training.experiment_evaluation import describe, run
from ranking_training.experiment_settings import (
    CHALLENGER_TRAFFIC,
    DEFAULT_MAX_EXPERIMENT_DAYS,
    settings_from_args,
)
from ranking_training.job_env import MLFLOW_ENV_DEFAULTS, add_workload_arguments

PROGRAM = "ranking-experiments"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Evaluate a brand's running online experiment."
    )
    parser.add_argument(
        "command",
        choices=("evaluate", "status", "drift"),
        help="drift: the champion's feature drift (`ranking-experiments drift --help`)",
    )
    # The challenger share: a flag, the brand file or the service's own variable, in that order.
    parser.set_defaults(env_challenger_traffic=add_workload_arguments(parser).challenger_traffic)
    parser.add_argument(
        "--brand-file", type=Path, help="take challenger_traffic and max_experiment_days from it"
    )
    parser.add_argument(
        "--challenger-traffic",
        type=float,
        help=f"share of users in the challenger arm [{CHALLENGER_TRAFFIC}]",
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


if __name__ == "__main__":
    sys.exit(main())
