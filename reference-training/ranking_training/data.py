"""Stage 1: the rules for reading and validating a brand's impressions, feedback and catalog.

Reads `date=` partitions through fsspec (file:// or abfs://), checks every file against the
schemas in `ranking_features.events`, removes duplicate events (ingestion is at-least-once) and
refuses data that cannot be trained on with a `DataError` naming the file and column. Feedback
is read one day past the window, because the clicks on the last day's impressions may land
after midnight.

The functions here work on one partition or one bucket of events; `ranking_training.lake_window`
runs them where a window's day partitions live (in this process or on Dask workers), and
`load_lake` is that pipeline in this process, gathered into one `LakeData`.

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
    FEEDBACK_TYPES,
    IMPRESSIONS_DIR,
    TIMESTAMP,
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
        whatever order, files and partitions they were read (`content_digest`)."""
        return window_fingerprint(
            [content_digest(self.impressions)],
            [content_digest(self.feedback)],
            content_digest(self.catalog),
            self.window_start,
            self.window_end,
        )


Digest = tuple[int, int, int]
"""A multiset digest of a frame's rows: (rows, sum of row hashes, sum of remixed row hashes),
sums modulo 2**64. Order-free, and the digest of a union is the sum of the parts' digests, so
day partitions digest where they live and only three integers each reach the driver."""

_MASK = (1 << 64) - 1


def content_digest(frame: pd.DataFrame) -> Digest:
    """The `Digest` of a frame's rows (pandas' row hashes; a pool list hashes as its items)."""
    if "pool" in frame:  # lists do not hash: the pool's items joined instead
        pools = frame["pool"].map(lambda pool: None if pool is None else "\x1f".join(pool))
        frame = frame.assign(pool=pools)
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    # A second, independent mix (splitmix64's finaliser) makes a collision of the plain sums
    # alone not enough to hide a change.
    mixed = rows ^ (rows >> np.uint64(30))
    mixed *= np.uint64(0xBF58476D1CE4E5B9)
    mixed ^= mixed >> np.uint64(27)
    mixed *= np.uint64(0x94D049BB133111EB)
    mixed ^= mixed >> np.uint64(31)
    return len(rows), int(rows.sum(dtype=np.uint64)), int(mixed.sum(dtype=np.uint64))


def window_fingerprint(
    impressions: list[Digest],
    feedback: list[Digest],
    catalog: Digest,
    window_start: float,
    window_end: float,
) -> str:
    """The fingerprint of a window from the digests of its parts (any partitioning)."""

    def total(parts: list[Digest]) -> str:
        rows = sum(p[0] for p in parts)
        return f"{rows}:{sum(p[1] for p in parts) & _MASK}:{sum(p[2] for p in parts) & _MASK}"

    text = "|".join(
        [total(impressions), total(feedback), total([catalog]), f"{window_start}:{window_end}"]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def day_start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def load_lake(
    lake_uri: str, data_from: date, data_to: date, mature_before: float | None = None
) -> LakeData:
    """Read and validate the window [data_from, data_to] (whole UTC days) into this process.

    `mature_before` (epoch seconds; the run's time minus the label delay) ends the window
    early: impressions at or after it are left out (counted as `immature_impressions`), since
    the feedback on them may not have arrived, and feedback on them is the next run's.

    This is the training job's own read (`lake_window.read_window`) on Dask's synchronous
    scheduler, gathered: one implementation of the rules, whatever runs it."""
    # Imported here: lake_window runs this module's functions, and this one only gathers it.
    from ranking_training.cluster import TrainingCluster
    from ranking_training.lake_window import read_window

    return read_window(
        TrainingCluster.in_process(), lake_uri, data_from, data_to, mature_before
    ).to_lake_data()


def window_bounds(
    data_from: date, data_to: date, mature_before: float | None
) -> tuple[float, float]:
    """[start, end) of the window in epoch seconds: whole days, ended early by maturity."""
    if data_to < data_from:
        raise DataError(f"data window: --from {data_from} is after --to {data_to}")
    window_start = day_start(data_from)
    window_end = day_start(data_to + timedelta(days=1))
    if mature_before is not None and mature_before < window_end:
        window_end = max(window_start, mature_before)
    return window_start, window_end


def no_mature_impressions(lake_uri: str, data_from: date, data_to: date, end: float) -> DataError:
    return DataError(
        f"{lake_uri}/{IMPRESSIONS_DIR}: no mature impressions between {data_from} and "
        f"{data_to} (before {datetime.fromtimestamp(end, UTC):%Y-%m-%d %H:%M} UTC, "
        "the run's time minus training.label_delay_hours); check the lake URI and the data "
        "window (--from/--to or --lookback-days)"
    )


def event_seconds(events: pa.Table) -> np.ndarray:
    """Each row's `ts` in epoch seconds."""
    return pc.cast(pc.cast(events["ts"], TIMESTAMP), pa.int64()).to_numpy() / 1e6


def drop_unmatched_feedback(feedback: EventFiles, impressions: pa.Table, window_end: float) -> int:
    """Drop feedback naming a request whose (request_id, user_id, item_id) matches no
    impression; the number dropped, not counting feedback from the day past the window that
    names an unknown request (its impression is after the window: the next run's).
    `impressions` must hold every impression of the requests `feedback` names."""
    events = feedback.table
    if events.num_rows == 0:
        return 0
    matched = matches_an_impression(events, impressions)
    linked = events["request_id"].is_valid().to_numpy(zero_copy_only=False)
    stray = linked & ~matched
    if not stray.any():
        return 0
    rows = events.filter(pa.array(stray))
    seconds = event_seconds(rows)
    known = pc.is_in(rows["request_id"], value_set=impressions["request_id"]).to_numpy()
    feedback.keep(~stray)
    return int(((seconds < window_end) | known).sum())


def days_between(first: date, last: date) -> list[date]:
    """The days from `first` to `last`, both included."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass
class EventFiles:
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


def read_events(
    fs: AbstractFileSystem,
    root: str,
    events_dir: str,
    days: list[str],
    schema: pa.Schema,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> EventFiles:
    """The files of `days` (YYYY-MM-DD) under `events_dir`, validated, in day and name order;
    a `DataError` names the first file that breaks a rule."""
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
        empty = pa.schema([schema.field(name) for name in (*required, *optional)]).empty_table()
        return EventFiles(empty, [], np.zeros(0, dtype=np.int64))
    source = np.repeat(np.arange(len(tables)), [t.num_rows for t in tables])
    return EventFiles(pa.concat_tables(tables), paths, source)


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


def to_frame(table: pa.Table) -> pd.DataFrame:
    """A table as pandas, `ts` and `published_at` in epoch seconds."""
    frame = table.to_pandas()
    for name in ("ts", "published_at"):
        if name in frame:
            frame[name] = frame[name].astype("datetime64[us, UTC]").astype("int64") / 1e6
    return frame


def read_catalog(lake_uri: str) -> pd.DataFrame:
    """The item catalog, validated (each item once)."""
    fs, root = open_lake(lake_uri)
    path = f"{root}/{CATALOG_PATH}"
    if not fs.exists(path):
        raise DataError(
            f"{lake_uri}/{CATALOG_PATH}: the item catalog is missing; the brand's content "
            "system must write it (columns item_id, category, published_at)"
        )
    catalog = to_frame(_read_file(fs, path, CATALOG_SCHEMA, CATALOG_COLUMNS))
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
