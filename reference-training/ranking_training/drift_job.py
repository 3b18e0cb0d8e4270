"""`ranking-experiments drift`: has the traffic the champion serves moved away from the data it
was trained on? Judged feature by feature, recorded on the champion's registry version.

The wiring around `ranking_features.drift` (docs/architecture.md, "Feature drift"):

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
import math
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from ranking_features.definition import FEATURE_NAMES, FEATURE_VERSION
from ranking_features.drift import (
    DISTRIBUTION_ARTIFACT,
    FEATURE_SAMPLE_SCHEMA,
    DriftDataError,
    FeatureDistribution,
    population_stability_index,
    unshifted_psi,
)
from ranking_features.events import FEATURES_DIR, partition_dir
from ranking_features.mlflow_credentials import (
    MlflowCredentialsError,
    configure_mlflow_credentials,
)
from ranking_features.mlflow_names import CHAMPION, registered_model_name

from ranking_training.config import zoned_time
from ranking_training.errors import TrainingError

PROGRAM = "ranking-experiments drift"
PSI_TAG_PREFIX = "drift.psi."
THRESHOLD_TAG = "drift.psi_threshold"
EVALUATED_AT_TAG = "drift.evaluated_at"
SAMPLE_ROWS_TAG = "drift.sample_rows"
WINDOW_TAG = "drift.window"
# The brand schema's defaults (ranking_features.brand.Monitoring); the CronJob passes the brand's.
DEFAULT_PSI_THRESHOLD = 0.2
DEFAULT_WINDOW_HOURS = 24
DEFAULT_MIN_ROWS = 1000
MLFLOW_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
_SAMPLE_COLUMNS = ("ts", "model_version", *FEATURE_NAMES)


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


@dataclass(frozen=True)
class ServedSample:
    """The sampled rows one model version scored in a window, one column per feature."""

    features: np.ndarray
    files: int
    skipped: dict[str, int]
    """Rows left out, by the feature that was null or not finite in them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Compare the champion's served feature sample with its training "
        "distribution (PSI per feature) and record the result on its registry version.",
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


def settings_from_args(args: argparse.Namespace) -> DriftSettings:
    """The job's settings; a ValueError names the missing or invalid one."""
    for name, variable in (
        ("brand", "RECPLAT_BRAND"),
        ("lake_uri", "RECPLAT_LAKE_URI"),
        ("tracking_uri", "MLFLOW_TRACKING_URI"),
    ):
        if not getattr(args, name):
            raise ValueError(f"--{name.replace('_', '-')} (or {variable}) is required")
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


def run(settings: DriftSettings) -> dict[str, Any]:
    """Judge the champion's drift and record it on its version; returns what happened."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    base: dict[str, Any] = {
        "brand": settings.brand,
        "model_name": settings.model_name,
        "window": _window(settings),
        "psi_threshold": settings.psi_threshold,
    }
    version = _champion(client, settings)
    if version is None:
        return {**base, "judged": False, "message": f"no champion: {settings.model_name} "
                "has no champion alias, so nothing serves and nothing can drift"}  # fmt: skip
    label = f"{settings.model_name} v{version.version}"
    reference = _distribution(client, settings, version, label)
    sample = read_served_sample(
        settings.lake_uri, settings.since, settings.until, str(version.version)
    )
    rows = len(sample.features)
    result = {
        **base,
        "model_version": str(version.version),
        "sample_rows": rows,
        "training_rows": reference.rows,
        "training_window": reference.window,
        "files_read": sample.files,
        "skipped_rows": sample.skipped,
    }
    if rows < settings.min_rows:
        _record(client, settings, str(version.version), None, rows)
        return {
            **result,
            "judged": False,
            "message": (
                f"{rows} sampled rows of v{version.version} in {result['window']}, fewer than "
                f"the {settings.min_rows} a verdict needs: no verdict, drift tags removed "
                "(more traffic, a longer --window-hours or a larger monitoring.feature_sample)"
            ),
        }
    psi = {
        name: population_stability_index(
            histogram.counts, histogram.bin_counts(sample.features[:, column])
        )
        for column, (name, histogram) in enumerate(_in_feature_order(reference, label))
    }
    _record(client, settings, str(version.version), psi, rows)
    bins = max(len(h.counts) for h in reference.features.values())
    return {
        **result,
        "judged": True,
        "psi": psi,
        "drifted": sorted(name for name, value in psi.items() if value > settings.psi_threshold),
        "noise_psi": unshifted_psi(bins, rows, max(reference.rows, 1)),
    }


def read_served_sample(
    lake_uri: str, since: datetime, until: datetime, version: str
) -> ServedSample:
    """The feature sample rows of `version` with `since <= ts < until` from the lake's daily
    partitions; a file that is not a feature sample raises DriftJobError naming it and the
    column, a row with a null or non-finite feature is skipped and counted."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from ranking_features.lake import open_lake

    try:
        fs, root = open_lake(lake_uri)
        paths = []
        day = since.astimezone(UTC).date()
        while day <= until.astimezone(UTC).date():
            folder = f"{root}/{partition_dir(FEATURES_DIR, day.isoformat())}"
            if fs.exists(folder):
                paths += sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".parquet"))
            day += timedelta(days=1)
    except ValueError as error:
        raise DriftJobError(f"RECPLAT_LAKE_URI: {error}") from error
    except Exception as error:  # storage SDKs raise their own types
        raise DriftJobError(
            f"cannot list the feature sample in the lake {lake_uri}: {type(error).__name__}: "
            f"{error}"
        ) from error
    wanted = pa.schema([FEATURE_SAMPLE_SCHEMA.field(name) for name in _SAMPLE_COLUMNS])
    low, high = pa.scalar(since, wanted.field("ts").type), pa.scalar(until, wanted.field("ts").type)
    blocks: list[np.ndarray] = []
    skipped: dict[str, int] = {}
    for path in paths:
        where = path.removeprefix(root).lstrip("/")
        try:
            with fs.open(path, "rb") as handle:
                table = pq.read_table(handle)
        except Exception as error:
            raise DriftJobError(f"{where}: not a readable parquet file: {error}") from error
        table = _checked(table, wanted, where)
        keep = pc.and_(
            pc.and_(pc.greater_equal(table["ts"], low), pc.less(table["ts"], high)),
            pc.equal(table["model_version"], version),
        )
        table = table.filter(pc.fill_null(keep, False))
        if table.num_rows == 0:
            continue
        matrix = np.column_stack(
            [
                table[name].to_numpy(zero_copy_only=False).astype(np.float64)
                for name in FEATURE_NAMES
            ]
        )
        bad = ~np.isfinite(matrix)  # nulls became NaN
        for column in np.flatnonzero(bad.any(axis=0)):
            name = FEATURE_NAMES[column]
            skipped[name] = skipped.get(name, 0) + int(bad[:, column].sum())
        blocks.append(matrix[~bad.any(axis=1)])
    features = np.concatenate(blocks) if blocks else np.empty((0, len(FEATURE_NAMES)))
    return ServedSample(features=features, files=len(paths), skipped=skipped)


def _checked(table: Any, wanted: Any, where: str) -> Any:
    """`table`'s sample columns cast to the schema's types, or a DriftJobError naming the
    column that is missing or cannot be."""
    columns = []
    for field in wanted:
        if field.name not in table.column_names:
            raise DriftJobError(
                f"{where}: column {field.name}: missing; not a feature sample file "
                f"({FEATURES_DIR} holds only what ranking-serve ships): move it out"
            )
        try:
            columns.append(table[field.name].cast(field.type))
        except Exception:
            raise DriftJobError(
                f"{where}: column {field.name}: {field.type} values, got "
                f"{table.schema.field(field.name).type}; move the file out of {FEATURES_DIR}"
            ) from None
    import pyarrow as pa

    return pa.table(columns, schema=wanted)


def _in_feature_order(reference: FeatureDistribution, label: str) -> list[tuple[str, Any]]:
    missing = [name for name in FEATURE_NAMES if name not in reference.features]
    if reference.feature_version != FEATURE_VERSION or missing:
        raise DriftJobError(
            f"{label}: {DISTRIBUTION_ARTIFACT}: features: the {len(FEATURE_NAMES)} features "
            f"of feature_version {FEATURE_VERSION} ({', '.join(FEATURE_NAMES)}), got version "
            f"{reference.feature_version} without {', '.join(missing) or 'none'}; the "
            "champion predates these features: retrain it"
        )
    return [(name, reference.features[name]) for name in FEATURE_NAMES]


def _champion(client: Any, settings: DriftSettings) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(settings.model_name, CHAMPION)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise _unreachable(settings, error) from error
    except Exception as error:  # requests' connection errors, once MLflow stops retrying
        raise _unreachable(settings, error) from error


def _distribution(
    client: Any, settings: DriftSettings, version: Any, label: str
) -> FeatureDistribution:
    """The champion's stored training distribution; a DriftJobError says why it has none."""
    import tempfile

    from mlflow.artifacts import download_artifacts

    with tempfile.TemporaryDirectory(prefix="recplat-drift-") as scratch:
        try:
            path = download_artifacts(
                run_id=version.run_id,
                artifact_path=DISTRIBUTION_ARTIFACT,
                dst_path=scratch,
                tracking_uri=settings.tracking_uri,
            )
            text = Path(path).read_text(encoding="utf-8")
        except Exception as error:
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DriftJobError(
                f"{label} (run {version.run_id}): {DISTRIBUTION_ARTIFACT}: no training "
                f"distribution stored with the champion ({detail[:200]}); it was trained before "
                "drift monitoring: retrain the brand (ranking-train stores one with every "
                "version)"
            ) from None
    try:
        return FeatureDistribution.from_json(text, where=f"{label}: {DISTRIBUTION_ARTIFACT}")
    except DriftDataError as error:
        raise DriftJobError(str(error)) from None


def _record(
    client: Any,
    settings: DriftSettings,
    version: str,
    psi: dict[str, float] | None,
    rows: int,
) -> None:
    """The verdict as the version's tags; without one, the PSI tags are removed."""
    model = settings.model_name
    try:
        current = dict(client.get_model_version(model, version).tags or {})
        kept = {f"{PSI_TAG_PREFIX}{name}" for name in psi or {}}
        for key in current:
            if key.startswith(PSI_TAG_PREFIX) and key not in kept:
                client.delete_model_version_tag(model, version, key)
        tags = {
            SAMPLE_ROWS_TAG: str(rows),
            WINDOW_TAG: _window(settings),
            THRESHOLD_TAG: f"{settings.psi_threshold:g}",
        }
        tags |= {f"{PSI_TAG_PREFIX}{name}": f"{value:.6f}" for name, value in (psi or {}).items()}
        # Last: the service takes a verdict whole once this tag changes (drift_gauges).
        tags[EVALUATED_AT_TAG] = _iso(settings.until)
        for key, value in tags.items():
            client.set_model_version_tag(model, version, key, value)
    except Exception as error:
        raise DriftJobError(
            f"could not record the drift of {model} v{version} in MLflow at "
            f"{settings.tracking_uri}: {str(error)[:300]}; rerun the job"
        ) from error


def describe(result: dict[str, Any]) -> str:
    """The result for a person: per feature its PSI against the threshold."""
    head = f"{result['brand']}: {result['model_name']}"
    if not result["judged"]:
        return f"{head}: {result['message']}"
    lines = [
        f"{head} v{result['model_version']}: {result['sample_rows']} sampled rows in "
        f"{result['window']} vs {result['training_rows']} training rows "
        f"({result['training_window']}); PSI of noise alone ~{result['noise_psi']:.3f}",
    ]
    for name, value in result["psi"].items():
        flag = "DRIFTED" if value > result["psi_threshold"] else "ok"
        lines.append(f"  {name:<24} PSI {value:8.4f}  {flag}")
    drifted = result["drifted"]
    lines.append(
        f"  threshold {result['psi_threshold']:g}: "
        + (f"{len(drifted)} feature(s) drifted: {', '.join(drifted)}" if drifted else "no drift")
    )
    return "\n".join(lines)


def _window(settings: DriftSettings) -> str:
    return f"[{_iso(settings.since)}, {_iso(settings.until)})"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _unreachable(settings: DriftSettings, error: Exception) -> DriftJobError:
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    return DriftJobError(
        f"MLflow at {settings.tracking_uri} is unreachable or refused the request "
        f"({detail[:300]}); check MLFLOW_TRACKING_URI (or --tracking-uri) and the credentials"
    )
