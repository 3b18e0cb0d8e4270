"""The service's feature sample in the lake (`events/features/`, `FEATURE_SAMPLE_SCHEMA` of
`ranking_features.drift`): the rows one model version scored in a window, checked column by
column."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from ranking_features.definition import FEATURE_NAMES
from ranking_features.drift import (
    FEATURE_SAMPLE_SCHEMA,
)
from ranking_features.events import FEATURES_DIR, partition_dir
from ranking_features.workload_env import TrainingEnv

from ranking_training.drift_settings import DriftJobError

_SAMPLE_COLUMNS = ("ts", "model_version", *FEATURE_NAMES)


@dataclass(frozen=True)
class ServedSample:
    """The sampled rows one model version scored in a window, one column per feature."""

    features: np.ndarray
    files: int
    skipped: dict[str, int]
    """Rows left out, by the feature that was null or not finite in them."""


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
        raise DriftJobError(f"{TrainingEnv.variable('lake_uri')}: {error}") from error
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
