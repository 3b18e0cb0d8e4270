"""Stage 1: read and validate a brand's impressions, feedback and catalog from its lake.

Reads the `date=` partitions of the window through fsspec (file:// or abfs://), checks every
file against the schemas in `ranking_features.events`, removes duplicate events (ingestion is
at-least-once) and refuses data that cannot be trained on with a `DataError` naming the file
and column. Feedback is read one day past the window, because the clicks on the last day's
impressions may land after midnight.

Feedback follows the lake's feedback rules (`ranking_features.events`, docs/architecture.md):
a retry counts once, and feedback that names a request but whose request_id, user_id and
item_id match no impression is dropped and counted (`unmatched_feedback`), so it is neither a
label nor a click in the features. Feedback without a request_id stays (features only).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
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
    TIMESTAMP,
    first_of_each_event,
    matches_an_impression,
)
from ranking_features.lake import open_lake

from ranking_training.errors import DataError

# Columns training needs; the other schema columns are optional to it.
IMPRESSION_COLUMNS = ("event_id", "request_id", "ts", "user_id", "item_id", "position")
# Read when present (the counterfactual gate's exploration slice), null in older files.
EXPLORATION_COLUMNS = ("policy", "propensity", "pool", "model_version")
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
    # Feedback events dropped because they match no impression (FEEDBACK_MATCH_KEYS).
    unmatched_feedback: int = 0
    # Impressions left out because their labels were not mature (newer than the cut-off).
    immature_impressions: int = 0

    def fingerprint(self) -> str:
        """A digest of the data's content: the same events give the same fingerprint, in
        whatever order and files they were read (row hashes, sorted)."""
        digest = hashlib.sha256()
        for frame in (self.impressions, self.feedback, self.catalog):
            if "pool" in frame:  # lists do not hash: the pool's items joined instead
                pools = frame["pool"].map(lambda pool: None if pool is None else "\x1f".join(pool))
                frame = frame.assign(pool=pools)
            rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
            digest.update(np.sort(rows).tobytes())
        digest.update(f"{self.window_start}:{self.window_end}".encode())
        return digest.hexdigest()[:32]


def day_start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def load_lake(
    lake_uri: str, data_from: date, data_to: date, mature_before: float | None = None
) -> LakeData:
    """Read and validate the window [data_from, data_to] (whole UTC days).

    `mature_before` (epoch seconds; the run's time minus the label delay) ends the window
    early: impressions at or after it are left out (counted as `immature_impressions`), since
    the feedback on them may not have arrived, and feedback on them is the next run's."""
    if data_to < data_from:
        raise DataError(f"data window: --from {data_from} is after --to {data_to}")
    fs, root = open_lake(lake_uri)
    window_start = day_start(data_from)
    window_end = day_start(data_to + timedelta(days=1))
    if mature_before is not None and mature_before < window_end:
        window_end = max(window_start, mature_before)
    impression_days = _days(data_from, data_to)
    feedback_days = _days(data_from, data_to + timedelta(days=1))

    impressions = _read_events(
        fs,
        root,
        IMPRESSIONS_DIR,
        impression_days,
        IMPRESSION_SCHEMA,
        IMPRESSION_COLUMNS,
        EXPLORATION_COLUMNS,
    )
    immature = impressions.keep(_seconds(impressions.table) < window_end)
    if impressions.table.num_rows == 0:
        raise DataError(
            f"{lake_uri}/{IMPRESSIONS_DIR}: no mature impressions between {data_from} and "
            f"{data_to} (before {datetime.fromtimestamp(window_end, UTC):%Y-%m-%d %H:%M} UTC, "
            "the run's time minus training.label_delay_hours); check the lake URI and the data "
            "window (--from/--to or --lookback-days)"
        )
    feedback = _read_events(
        fs, root, FEEDBACK_DIR, feedback_days, FEEDBACK_SCHEMA, FEEDBACK_COLUMNS
    )
    catalog = _read_catalog(fs, root, lake_uri)

    duplicates = impressions.drop_duplicate_events()
    duplicates += feedback.keep(first_of_each_event(feedback.table))
    unmatched = _drop_unmatched_feedback(feedback, impressions.table, window_end)
    # Ids that repeat across a million rows are read as categories: hashed once here, and
    # the feature stage's grouping and encoding reuse the codes.
    impressions.encode("request_id", "item_id")
    impressions.check_ranked_lists()

    return LakeData(
        impressions=_to_frame(impressions.table),
        feedback=_to_frame(feedback.table),
        catalog=catalog,
        window_start=window_start,
        window_end=window_end,
        files_read=len(impressions.paths) + len(feedback.paths) + 1,
        duplicates_dropped=duplicates,
        unmatched_feedback=unmatched,
        immature_impressions=immature,
    )


def _seconds(events: pa.Table) -> np.ndarray:
    """Each row's `ts` in epoch seconds."""
    return pc.cast(pc.cast(events["ts"], TIMESTAMP), pa.int64()).to_numpy() / 1e6


def _drop_unmatched_feedback(feedback: _Events, impressions: pa.Table, window_end: float) -> int:
    """Drop feedback naming a request whose (request_id, user_id, item_id) matches no
    impression; the number dropped, not counting feedback from the day past the window that
    names an unknown request (its impression is after the window: the next run's)."""
    events = feedback.table
    if events.num_rows == 0:
        return 0
    matched = matches_an_impression(events, impressions)
    linked = events["request_id"].is_valid().to_numpy(zero_copy_only=False)
    stray = linked & ~matched
    if not stray.any():
        return 0
    rows = events.filter(pa.array(stray))
    seconds = _seconds(rows)
    known = pc.is_in(rows["request_id"], value_set=impressions["request_id"]).to_numpy()
    feedback.keep(~stray)
    return int(((seconds < window_end) | known).sum())


def _days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


@dataclass
class _Events:
    """The validated files of one event kind, concatenated; `source` is each row's file."""

    table: pa.Table
    paths: list[str]
    source: np.ndarray

    def drop_duplicate_events(self) -> int:
        """Keep the first row of each event_id (ingestion is at-least-once); the number dropped.
        For impressions, whose event_id the service makes (request_id:position)."""
        if self.table.num_rows == 0:
            return 0
        codes = pc.dictionary_encode(self.table["event_id"].combine_chunks()).indices
        return self.keep(~pd.Series(codes.to_numpy()).duplicated().to_numpy())

    def keep(self, rows: np.ndarray) -> int:
        """Keep the rows of a mask; the number dropped."""
        dropped = int(len(rows) - rows.sum())
        if dropped:
            self.table = self.table.filter(pa.array(rows))
            self.source = self.source[rows]
        return dropped

    def encode(self, *names: str) -> None:
        """Make columns dictionary-encoded (pandas categorical), categories in id order so that
        sorting by the column still sorts by id."""
        for name in names:
            encoded = pc.dictionary_encode(self.table[name].combine_chunks())
            order = pc.array_sort_indices(encoded.dictionary).to_numpy()
            rank = np.empty(len(order), dtype=np.int32)
            rank[order] = np.arange(len(order), dtype=np.int32)
            indices = pa.array(rank[encoded.indices.to_numpy()])
            encoded = pa.DictionaryArray.from_arrays(indices, encoded.dictionary.take(order))
            index = self.table.column_names.index(name)
            self.table = self.table.set_column(index, name, encoded)

    def check_ranked_lists(self) -> None:
        """A ranked list holds each item once: no (request_id, item_id) pair repeats."""
        requests = self.table["request_id"].combine_chunks()
        items = self.table["item_id"].combine_chunks()
        pair = requests.indices.to_numpy().astype(np.int64) * len(items.dictionary)
        pair += items.indices.to_numpy()
        repeated = pd.Series(pair).duplicated().to_numpy()
        if repeated.any():
            row = int(np.flatnonzero(repeated)[0])
            raise DataError(
                f"{self.paths[self.source[row]]}: column 'item_id' repeats within request "
                f"{requests[row].as_py()!r}; a ranked list holds each item once"
            )


def _read_events(
    fs: AbstractFileSystem,
    root: str,
    events_dir: str,
    days: list[str],
    schema: pa.Schema,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> _Events:
    tables: list[pa.Table] = []
    paths: list[str] = []
    for day in days:
        folder = f"{root}/{events_dir}/date={day}"
        if not fs.exists(folder):
            continue
        files = sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".parquet"))
        for path in files:
            table = _read_file(fs, path, schema, required, optional)
            _check_rows(path, table, day_start(date.fromisoformat(day)))
            tables.append(table)
            paths.append(path)
    if not tables:
        names = (*required, *optional)
        empty = pa.table({name: pa.array([], schema.field(name).type) for name in names})
        return _Events(empty, [], np.zeros(0, dtype=np.int64))
    source = np.repeat(np.arange(len(tables)), [t.num_rows for t in tables])
    return _Events(pa.concat_tables(tables), paths, source)


def _read_file(
    fs: AbstractFileSystem,
    path: str,
    schema: pa.Schema,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
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
    for name in optional:
        expected = schema.field(name).type
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, expected))
        elif not _compatible(table.schema.field(name).type, expected):
            raise DataError(
                f"{path}: column {name!r} has type {table.schema.field(name).type}; "
                f"expected {expected}"
            )
    columns = [*required, *optional]
    return table.select(columns).cast(pa.schema([schema.field(n) for n in columns]))


def _compatible(found: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_timestamp(expected):
        return pa.types.is_timestamp(found)
    if pa.types.is_integer(expected):
        return pa.types.is_integer(found)
    if pa.types.is_string(expected):
        return pa.types.is_string(found) or pa.types.is_large_string(found)
    if pa.types.is_list(expected):
        return (pa.types.is_list(found) or pa.types.is_large_list(found)) and _compatible(
            found.value_type, expected.value_type
        )
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


def _check_rows(path: str, rows: pa.Table, partition_start: float) -> None:
    """Value checks of one events file; `rows` has impression or feedback columns."""
    if rows.num_rows == 0:
        return
    seconds = pc.divide(pc.cast(pc.cast(rows["ts"], TIMESTAMP), pa.int64()), 1_000_000)
    outside = pc.sum(
        pc.or_(
            pc.less(seconds, partition_start), pc.greater_equal(seconds, partition_start + 86_400)
        )
    ).as_py()
    if outside:
        raise DataError(
            f"{path}: column 'ts' has {outside} events outside the file's date= "
            "partition; the writer must partition by the event's UTC date"
        )
    if "position" in rows.column_names and pc.min(rows["position"]).as_py() < 1:
        raise DataError(f"{path}: column 'position' has values below 1; positions are 1-based")
    if "type" in rows.column_names:
        unknown = pc.invert(pc.is_in(rows["type"], pa.array(FEEDBACK_TYPES)))
        if pc.any(unknown).as_py():
            found = sorted(pc.unique(rows["type"].filter(unknown)).to_pylist())[:5]
            raise DataError(
                f"{path}: column 'type' has unknown values {found}; "
                f"expected one of {FEEDBACK_TYPES}"
            )
