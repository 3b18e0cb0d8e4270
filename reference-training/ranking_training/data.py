"""Stage 1: read and validate a brand's impressions, feedback and catalog from its lake.

Reads the `date=` partitions of the window through fsspec (file:// or abfs://), checks every
file against the schemas in `ranking_features.events`, removes duplicate event ids (ingestion is
at-least-once) and refuses data that cannot be trained on with a `DataError` naming the file
and column. Feedback is read one day past the window, because the clicks on the last day's
impressions may land after midnight.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem
from ranking_features.events import (
    CATALOG_PATH,
    CATALOG_SCHEMA,
    FEEDBACK_DIR,
    FEEDBACK_SCHEMA,
    FEEDBACK_TYPES,
    IMPRESSION_SCHEMA,
    IMPRESSIONS_DIR,
)
from ranking_features.lake import open_lake

from ranking_training.errors import DataError

# Columns training needs; the other schema columns are optional to it.
IMPRESSION_COLUMNS = ("event_id", "request_id", "ts", "user_id", "item_id", "position")
FEEDBACK_COLUMNS = ("event_id", "request_id", "ts", "user_id", "item_id", "type")
CATALOG_COLUMNS = ("item_id", "category", "published_at")


@dataclass
class LakeData:
    """Validated, deduplicated events of a window, as pandas frames (ts in epoch seconds)."""

    impressions: pd.DataFrame
    feedback: pd.DataFrame
    catalog: pd.DataFrame
    window_start: float
    window_end: float
    files_read: int
    duplicates_dropped: int

    def fingerprint(self) -> str:
        """A digest of the data's content: the same events give the same fingerprint."""
        digest = hashlib.sha256()
        for frame in (self.impressions, self.feedback, self.catalog):
            ordered = frame.sort_values(list(frame.columns[:1])).reset_index(drop=True)
            digest.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
        digest.update(f"{self.window_start}:{self.window_end}".encode())
        return digest.hexdigest()[:32]


def day_start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def load_lake(lake_uri: str, data_from: date, data_to: date) -> LakeData:
    """Read and validate the window [data_from, data_to] (whole UTC days)."""
    if data_to < data_from:
        raise DataError(f"data window: --from {data_from} is after --to {data_to}")
    fs, root = open_lake(lake_uri)
    window_start = day_start(data_from)
    window_end = day_start(data_to + timedelta(days=1))
    impression_days = _days(data_from, data_to)
    feedback_days = _days(data_from, data_to + timedelta(days=1))

    impressions, n_impression_files = _read_events(
        fs, root, IMPRESSIONS_DIR, impression_days, IMPRESSION_SCHEMA, IMPRESSION_COLUMNS
    )
    if impressions.empty:
        raise DataError(
            f"{lake_uri}/{IMPRESSIONS_DIR}: no impressions between {data_from} and {data_to}; "
            "check the lake URI and the data window (--from/--to or --lookback-days)"
        )
    feedback, n_feedback_files = _read_events(
        fs, root, FEEDBACK_DIR, feedback_days, FEEDBACK_SCHEMA, FEEDBACK_COLUMNS
    )
    catalog = _read_catalog(fs, root, lake_uri)

    duplicates = 0
    before = len(impressions)
    impressions = impressions.drop_duplicates("event_id", keep="first")
    duplicates += before - len(impressions)
    before = len(feedback)
    feedback = feedback.drop_duplicates("event_id", keep="first")
    duplicates += before - len(feedback)

    return LakeData(
        impressions=impressions.reset_index(drop=True),
        feedback=feedback.reset_index(drop=True),
        catalog=catalog,
        window_start=window_start,
        window_end=window_end,
        files_read=n_impression_files + n_feedback_files + 1,
        duplicates_dropped=duplicates,
    )


def _days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _read_events(
    fs: AbstractFileSystem,
    root: str,
    events_dir: str,
    days: list[str],
    schema: pa.Schema,
    required: tuple[str, ...],
) -> tuple[pd.DataFrame, int]:
    tables: list[pa.Table] = []
    for day in days:
        folder = f"{root}/{events_dir}/date={day}"
        if not fs.exists(folder):
            continue
        files = sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".parquet"))
        for path in files:
            table = _read_file(fs, path, schema, required)
            _check_rows(path, _to_frame(table), day_start(date.fromisoformat(day)))
            tables.append(table)
    if not tables:
        empty = pa.table({name: pa.array([], schema.field(name).type) for name in required})
        return _to_frame(empty), 0
    return _to_frame(pa.concat_tables(tables)), len(tables)


def _read_file(
    fs: AbstractFileSystem, path: str, schema: pa.Schema, required: tuple[str, ...]
) -> pa.Table:
    try:
        with fs.open(path, "rb") as handle:
            table = pq.read_table(handle)
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(
            f"{path}: not a readable parquet file ({error}); remove or rewrite it"
        ) from error
    for name in required:
        expected = schema.field(name).type
        if name not in table.column_names:
            raise DataError(f"{path}: column {name!r} is missing; expected {expected}")
        found = table.schema.field(name).type
        if not _compatible(found, expected):
            raise DataError(f"{path}: column {name!r} has type {found}; expected {expected}")
        nulls = table.column(name).null_count
        if nulls and schema.field(name).nullable is False:
            raise DataError(f"{path}: column {name!r} has {nulls} null values; it is required")
    columns = [n for n in required]
    return table.select(columns).cast(pa.schema([schema.field(n) for n in columns]))


def _compatible(found: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_timestamp(expected):
        return pa.types.is_timestamp(found)
    if pa.types.is_integer(expected):
        return pa.types.is_integer(found)
    if pa.types.is_string(expected):
        return pa.types.is_string(found) or pa.types.is_large_string(found)
    return bool(found.equals(expected))


def _to_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    for name in ("ts", "published_at"):
        if name in frame:
            frame[name] = frame[name].astype("datetime64[us, UTC]").astype("int64") / 1e6
    return frame


def _read_catalog(fs: AbstractFileSystem, root: str, lake_uri: str) -> pd.DataFrame:
    path = f"{root}/{CATALOG_PATH}"
    if not fs.exists(path):
        raise DataError(
            f"{lake_uri}/{CATALOG_PATH}: the item catalog is missing; the brand's content "
            "system must write it (columns item_id, category, published_at)"
        )
    catalog = _to_frame(_read_file(fs, path, CATALOG_SCHEMA, CATALOG_COLUMNS))
    duplicated = catalog["item_id"].duplicated()
    if duplicated.any():
        example = catalog.loc[duplicated, "item_id"].iloc[0]
        raise DataError(
            f"{path}: column 'item_id' has {int(duplicated.sum())} duplicate ids "
            f"(e.g. {example!r}); each item must appear once"
        )
    return catalog


def _check_rows(path: str, rows: pd.DataFrame, partition_start: float) -> None:
    """Value checks of one events file; `rows` has impression or feedback columns."""
    outside = (rows["ts"] < partition_start) | (rows["ts"] >= partition_start + 86_400)
    if outside.any():
        raise DataError(
            f"{path}: column 'ts' has {int(outside.sum())} events outside the file's date= "
            "partition; the writer must partition by the event's UTC date"
        )
    if "position" in rows:
        if (rows["position"] < 1).any():
            raise DataError(f"{path}: column 'position' has values below 1; positions are 1-based")
        repeated = rows.duplicated(["request_id", "item_id"])
        if repeated.any():
            request = rows.loc[repeated, "request_id"].iloc[0]
            raise DataError(
                f"{path}: column 'item_id' repeats within request {request!r}; a ranked list "
                "holds each item once"
            )
    if "type" in rows:
        unknown = ~rows["type"].isin(FEEDBACK_TYPES)
        if unknown.any():
            found = sorted(rows.loc[unknown, "type"].unique())[:5]
            raise DataError(
                f"{path}: column 'type' has unknown values {found}; "
                f"expected one of {FEEDBACK_TYPES}"
            )
