"""`ranking-train` / `python -m ranking_training`: the command a brand's CronJob runs.

Configured by the env contract (RECPLAT_BRAND, RECPLAT_ENV, RECPLAT_LAKE_URI,
MLFLOW_TRACKING_URI, RECPLAT_MODEL_NAME, and on AKS RECPLAT_MLFLOW_USERNAME with
RECPLAT_MLFLOW_PASSWORD_FILE for the tracking server's basic auth); flags override it.
`--brand-file` takes the LightGBM parameters, lookback, promotion rule and workers from a brand
file; explicit flags win over it.
Exit codes: 0 done (promoted or not), 1 the job stopped (bad data, failed checks), 2 bad usage
(including unusable MLflow credentials).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from ranking_features.mlflow_credentials import (
    MlflowCredentialsError,
    configure_mlflow_credentials,
)

from ranking_training.config import LightGBMSettings, TrainingConfig, zoned_time
from ranking_training.errors import TrainingError

_T = TypeVar("_T")
PROMOTION_METRICS = ("ndcg@1", "ndcg@3", "ndcg@5", "ndcg@10", "map@10", "mrr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ranking-train", description="Train, evaluate and register a brand's ranker."
    )
    env = os.environ.get
    parser.add_argument("--brand", default=env("RECPLAT_BRAND"), help="[RECPLAT_BRAND]")
    parser.add_argument("--env", default=env("RECPLAT_ENV", "dev"), help="[RECPLAT_ENV]")
    parser.add_argument("--lake-uri", default=env("RECPLAT_LAKE_URI"), help="[RECPLAT_LAKE_URI]")
    parser.add_argument(
        "--tracking-uri", default=env("MLFLOW_TRACKING_URI"), help="[MLFLOW_TRACKING_URI]"
    )
    parser.add_argument(
        "--model-name",
        default=env("RECPLAT_MODEL_NAME", ""),
        help="default: the brand's registered model name",
    )
    parser.add_argument("--brand-file", type=Path, help="take training settings from this file")
    parser.add_argument("--from", dest="data_from", type=_date, help="first day (YYYY-MM-DD)")
    parser.add_argument(
        "--to",
        dest="data_to",
        type=_date,
        help="last day, included up to its end; default today, so events logged today count",
    )
    parser.add_argument("--lookback-days", type=int, help="window length when --from is absent")
    parser.add_argument(
        "--validation-days",
        type=int,
        default=1,
        help="days of the gate window, and of the early-stopping window before it",
    )
    parser.add_argument(
        "--label-delay-hours",
        type=int,
        help="leave out impressions newer than this before the run (default 6)",
    )
    parser.add_argument(
        "--run-at",
        type=zoned_time,
        help="the run's time, ISO 8601 with a zone (default now); label maturity counts from it",
    )
    for spec in fields(LightGBMSettings):
        flag = "--" + spec.name.replace("_", "-")
        parser.add_argument(
            flag, type=type(spec.default), help=f"LightGBM (default {spec.default})"
        )
    parser.add_argument("--promotion-metric", choices=PROMOTION_METRICS)
    parser.add_argument("--min-gain", type=float)
    parser.add_argument(
        "--conversion-weight", type=float, help="objective: clicks + w x conversions (default 0)"
    )
    parser.add_argument(
        "--margin",
        type=float,
        help="how much worse than the champion (share of its estimate) may pass (default 0.01)",
    )
    parser.add_argument(
        "--min-exploration-requests",
        type=int,
        help="explore requests the counterfactual gate needs in its window (default 300)",
    )
    parser.add_argument("--dismiss-label", type=int, default=0, choices=(0, 1))
    parser.add_argument(
        "--workers",
        type=int,
        help="0 trains in this process; N on N Dask workers: a local cluster of N processes, "
        "or the --dask-scheduler cluster once N have joined",
    )
    parser.add_argument("--dask-scheduler", default="", help="address of an existing Dask cluster")
    parser.add_argument("--format", choices=("lake", "svmlight"), default="lake")
    parser.add_argument("--train", type=Path, help="svmlight training file (.query beside it)")
    parser.add_argument("--valid", type=Path, help="svmlight validation file (.query beside it)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # Before any MLflow call: on AKS the tracking server wants the brand's user.
        configure_mlflow_credentials()
    except MlflowCredentialsError as error:
        print(f"ranking-train: {error}", file=sys.stderr)
        return 2
    try:
        if args.format == "svmlight":
            from ranking_training.svmlight import run_svmlight

            if args.train is None or args.valid is None:
                parser.error("--format svmlight needs --train FILE and --valid FILE")
            run_svmlight(
                args.train,
                args.valid,
                _lightgbm_settings(args, LightGBMSettings()),
                args.tracking_uri,
                args.brand or "svmlight",
            )
            return 0
        config = config_from_args(args, parser)
        from ranking_training.job import run_training

        run_training(config)
    except TrainingError as error:
        print(f"ranking-train: {error}", file=sys.stderr)
        return 1
    return 0


def config_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TrainingConfig:
    for name, variable in (
        ("brand", "RECPLAT_BRAND"),
        ("lake_uri", "RECPLAT_LAKE_URI"),
        ("tracking_uri", "MLFLOW_TRACKING_URI"),
    ):
        if not getattr(args, name):
            parser.error(f"--{name.replace('_', '-')} (or {variable}) is required")
    defaults = BrandDefaults()
    if args.brand_file is not None:
        defaults = _brand_defaults(args.brand_file, args.env)
    # Today, not yesterday: a retrain must see the feedback the services logged since the last
    # run (newsroom retrains every six hours). The split validates on the newest day that has
    # requests, so a run early in the day, before any traffic, still has a validation set.
    data_to = args.data_to or datetime.now(UTC).date()
    lookback = args.lookback_days or defaults.lookback_days
    data_from = args.data_from or data_to - timedelta(days=lookback - 1)
    return TrainingConfig(
        brand=args.brand,
        env=args.env,
        lake_uri=args.lake_uri,
        tracking_uri=args.tracking_uri,
        model_name=args.model_name,
        data_from=data_from,
        data_to=data_to,
        lightgbm=_lightgbm_settings(args, defaults.lightgbm),
        promotion_metric=args.promotion_metric or defaults.metric,
        min_gain=_given(args.min_gain, defaults.min_gain),
        workers=_given(args.workers, defaults.workers),
        dask_scheduler=args.dask_scheduler,
        dismiss_label=args.dismiss_label,
        validation_days=args.validation_days,
        git_sha=os.environ.get("RECPLAT_GIT_SHA") or _git_sha(),
        label_delay_hours=_given(args.label_delay_hours, defaults.label_delay_hours),
        run_at=args.run_at,
        conversion_weight=_given(args.conversion_weight, defaults.conversion_weight),
        margin=_given(args.margin, defaults.margin),
        min_exploration_requests=_given(
            args.min_exploration_requests, defaults.min_exploration_requests
        ),
    )


def _given(flag: _T | None, default: _T) -> _T:
    return default if flag is None else flag


@dataclass(frozen=True)
class BrandDefaults:
    """What a brand file sets for training; without one, the brand schema's defaults."""

    lightgbm: LightGBMSettings = field(default_factory=LightGBMSettings)
    lookback_days: int = 28
    metric: str = "ndcg@10"
    min_gain: float = 0.005
    workers: int = 0
    label_delay_hours: int = 6
    conversion_weight: float = 0.0
    margin: float = 0.01
    min_exploration_requests: int = 300


def _lightgbm_settings(args: argparse.Namespace, base: LightGBMSettings) -> LightGBMSettings:
    overrides = {f.name: getattr(args, f.name) for f in fields(LightGBMSettings)}
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def _brand_defaults(path: Path, env: str) -> BrandDefaults:
    from ranking_features.brand import load_brand

    try:
        training = load_brand(path).for_environment(env).training
    except Exception as error:  # the brand loader's errors already name file and field
        raise TrainingError(str(error)) from error
    lightgbm = LightGBMSettings(**training.lightgbm.model_dump())
    promotion = training.promotion
    return BrandDefaults(
        lightgbm=lightgbm,
        lookback_days=training.lookback_days,
        metric=str(promotion.metric),
        min_gain=promotion.min_gain,
        workers=training.workers,
        label_delay_hours=training.label_delay_hours,
        conversion_weight=promotion.conversion_weight,
        margin=promotion.margin,
        min_exploration_requests=promotion.min_exploration_requests,
    )


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def _git_sha() -> str:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return completed.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
