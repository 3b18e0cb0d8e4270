"""Ships sealed event-log segments to the brand's lake as parquet, then deletes them.

One segment becomes one parquet file per day it spans, under the lake layout of docs/architecture.md
("Contracts": `events/<kind>/date=YYYY-MM-DD/<segment>.parquet`), with the schemas of
`ranking_features.events`. The file name is the segment's name, so re-shipping a segment after a
crash between upload and delete overwrites the same file instead of duplicating it. A local
segment is deleted only after its upload succeeded; failed uploads stay and are retried.
All storage goes through fsspec: `file://` locally, `abfs://` (adlfs) on Azure.

One bad segment must not stop the others: on AKS the event log is a small emptyDir, and a
segment that blocks the queue fills it until the pod is evicted with every unshipped event.
So a segment whose records cannot become parquet (a date no partition can name, a broken
record) is quarantined at once, since the same bytes fail the same way every time. A failed
upload is retried, after the segments that have not failed, and quarantined only once the lake
has refused it in `MAX_UPLOAD_STRIKES` rounds while taking other segments of its kind; a lake
that takes nothing is away, and then nothing is quarantined. Quarantined segments are kept
(`EventLog.quarantine`), counted in `recplat_events_quarantined_segments` and alerted on.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from ranking_features.events import (
    ERRORS_DIR,
    FEATURES_DIR,
    FEEDBACK_DIR,
    FEEDBACK_SCHEMA,
    IMPRESSION_SCHEMA,
    IMPRESSIONS_DIR,
    RANK_ERROR_SCHEMA,
    partition_dir,
)
from ranking_features.lake import open_lake
from ranking_features.workload_env import ServiceEnv

from ranking_service.event_log import EventLog, read_segment
from ranking_service.feature_sample import feature_sample_table
from ranking_service.metrics import ServiceMetrics
from ranking_service.settings import SettingsError, redact

log = logging.getLogger(__name__)

LAKE_DIRS = {
    "impressions": IMPRESSIONS_DIR,
    "feedback": FEEDBACK_DIR,
    "features": FEATURES_DIR,
    "errors": ERRORS_DIR,
}


# One impression record as `rank` logs it: a ranked list, expanded to a row per item.
IMPRESSION_RECORD = pa.schema(
    [
        pa.field("request_id", pa.string()),
        pa.field("ts", pa.int64()),
        pa.field("user_id", pa.string()),
        pa.field("items", pa.list_(pa.string())),
        pa.field("scores", pa.list_(pa.float64())),
        pa.field("model_name", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("variant", pa.string()),
        pa.field("brand", pa.string()),
        # Request-level, like the fields above: every row of the list gets the same value.
        # Records written before exploration was logged have none of them (null in the lake).
        pa.field("policy", pa.string()),
        pa.field("propensity", pa.float64()),
        pa.field("pool", pa.list_(pa.string())),
        pa.field("experiment_id", pa.string()),
    ]
)
# The record's fields that are the same on every row of its list.
REQUEST_FIELDS = (
    "request_id",
    "ts",
    "user_id",
    "model_name",
    "model_version",
    "variant",
    "brand",
    "policy",
    "propensity",
    "pool",
    "experiment_id",
)
MICROSECONDS_PER_DAY = 86_400_000_000
EPOCH_DAY = date(1970, 1, 1)
SHIPPER_NICENESS = 10
MAX_UPLOAD_STRIKES = 3
"""Rounds in which a segment's upload failed while other segments of its kind shipped; after
that many the segment, not the lake, is at fault and it is quarantined."""
LAKE_DOWN_FAILURES = 2
"""Failed uploads, with nothing shipped yet, after which a round gives up: the lake is away,
and trying every segment would only wait out one time-out each."""


def impression_table(records: pa.Table) -> pa.Table:
    """One row per item served: a ranking record of n items expands to n rows, each with the
    record's request-level fields (an explore request's pool repeated on each of its rows)."""
    items = records["items"].combine_chunks()
    parents = pc.list_parent_indices(items)
    offsets = items.offsets.to_numpy()
    # 1-based rank of each item within its list.
    position = np.arange(len(parents), dtype=np.int32) - offsets[parents.to_numpy()] + 1
    rows = records.select(REQUEST_FIELDS).take(parents)
    event_id = pc.binary_join_element_wise(
        rows["request_id"], pc.cast(pa.array(position), pa.string()), ":"
    )
    columns = {
        "event_id": event_id,
        "request_id": rows["request_id"],
        "ts": pc.cast(rows["ts"], IMPRESSION_SCHEMA.field("ts").type),
        "user_id": rows["user_id"],
        "item_id": pc.list_flatten(items),
        "position": position,
        "score": pc.list_flatten(records["scores"].combine_chunks()),
        "model_name": rows["model_name"],
        "model_version": rows["model_version"],
        "variant": rows["variant"],
        "brand": rows["brand"],
        "policy": rows["policy"],
        "propensity": rows["propensity"],
        "pool": rows["pool"],
        "experiment_id": rows["experiment_id"],
    }
    return pa.Table.from_pydict(columns, schema=IMPRESSION_SCHEMA)


def read_impressions(segment: Path) -> pa.Table:
    """A segment's impression records, parsed by Arrow's JSON reader (C++, without the GIL,
    so shipping does not stall the event loop); records of a torn segment via `read_segment`."""
    try:
        return pj.read_json(
            segment,
            # One thread: shipping is background work and must not take both cores.
            read_options=pj.ReadOptions(use_threads=False),
            parse_options=pj.ParseOptions(
                explicit_schema=IMPRESSION_RECORD, unexpected_field_behavior="ignore"
            ),
        )
    except pa.ArrowInvalid:
        records = list(read_segment(segment))
        columns = {name: [r.get(name) for r in records] for name in IMPRESSION_RECORD.names}
        return pa.Table.from_pydict(columns, schema=IMPRESSION_RECORD)


def feedback_table(records: list[dict[str, Any]]) -> pa.Table:
    columns = {name: [r.get(name) for r in records] for name in FEEDBACK_SCHEMA.names}
    columns["ts"] = pa.array(columns["ts"], pa.int64()).cast(FEEDBACK_SCHEMA.field("ts").type)
    return pa.Table.from_pydict(columns, schema=FEEDBACK_SCHEMA)


def rank_error_table(records: list[dict[str, Any]]) -> pa.Table:
    columns = {name: [r.get(name) for r in records] for name in RANK_ERROR_SCHEMA.names}
    columns["ts"] = pa.array(columns["ts"], pa.int64()).cast(RANK_ERROR_SCHEMA.field("ts").type)
    return pa.Table.from_pydict(columns, schema=RANK_ERROR_SCHEMA)


def segment_table(kind: str, segment: Path) -> pa.Table:
    """The lake rows of one segment, in the kind's parquet schema."""
    if kind == "impressions":
        return impression_table(read_impressions(segment))
    if kind == "features":
        return feature_sample_table(list(read_segment(segment)))
    if kind == "errors":
        return rank_error_table(list(read_segment(segment)))
    return feedback_table(list(read_segment(segment)))


def split_by_day(table: pa.Table) -> list[tuple[str, pa.Table]]:
    """The rows of each UTC day (by `ts`), oldest day first.

    Days are floored, not truncated towards zero: a microsecond before 1970 is 1969-12-31.
    A `ts` outside the years a date can name (1 to 9999) is a ValueError that says so.
    """
    micros = pc.cast(table["ts"], pa.int64()).to_numpy()
    day = np.floor_divide(micros, MICROSECONDS_PER_DAY)
    parts = []
    for number in np.unique(day):
        rows = day == number
        try:
            name = (EPOCH_DAY + timedelta(days=int(number))).isoformat()
        except OverflowError:
            raise ValueError(
                f"ts {int(micros[rows][0])} (microseconds since 1970) is outside the years "
                "1 to 9999 that a date partition can name"
            ) from None
        parts.append((name, table.filter(pa.array(rows))))
    return parts


class LakeShipper:
    """Uploads sealed segments; `run()` does it every `interval_s` until `stop()`."""

    def __init__(
        self, event_log: EventLog, lake_uri: str, metrics: ServiceMetrics, interval_s: float
    ) -> None:
        self.event_log = event_log
        self.lake_uri = lake_uri
        self.metrics = metrics
        self.interval_s = interval_s
        try:
            self.fs, self.root = open_lake(lake_uri)
        except ValueError as error:
            raise SettingsError(f"{ServiceEnv.variable('lake_uri')}: {error}") from None
        self._stop = threading.Event()
        # Serialises rounds: the periodic one and the final one at shutdown.
        self._round = threading.Lock()
        self._thread: threading.Thread | None = None
        # Per segment name: rounds in which its upload failed while others shipped.
        self._strikes: dict[str, int] = {}

    def start(self) -> None:
        # Counted before the first round, so a restart does not hide quarantined segments.
        self._publish_backlog()
        self._thread = threading.Thread(target=self._run, name="lake-shipper", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the loop, then seal and ship what is left (graceful shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._ship_round(seal=True)

    def backlog(self) -> tuple[int, int]:
        """Segments still to ship, and segments quarantined, on local disk now."""
        return len(self.event_log.sealed_segments()), len(self.event_log.quarantined_segments())

    def _run(self) -> None:
        # Serving comes first: this thread runs at a lower CPU priority (Linux nice is per
        # thread), so converting a large segment does not stretch /rank's tail latency.
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SHIPPER_NICENESS)
        except OSError as error:
            log.info("lake shipper keeps the default CPU priority: %s", error)
        # Leftovers of a crashed run go first, before any new segment is sealed.
        self._ship_round(seal=False)
        while not self._stop.wait(self.interval_s):
            self._ship_round(seal=True)

    def _ship_round(self, *, seal: bool) -> None:
        # Whatever goes wrong in one round (a full disk while sealing), the next one runs:
        # a dead shipper thread would let the event log fill up in silence.
        try:
            self.ship_once(seal=seal)
        except Exception:
            log.exception("lake %s: shipping round failed; retrying", redact(self.lake_uri))

    def ship_once(self, *, seal: bool) -> int:
        """Seal the active segments (if asked) and ship the sealed ones; returns how many."""
        with self._round:
            if seal:
                for kind in LAKE_DIRS:
                    self.event_log.seal(kind)
            shipped = sum(self._ship_kind(kind) for kind in LAKE_DIRS)
            self._publish_backlog()
            return shipped

    def _ship_kind(self, kind: str) -> int:
        # Segments that failed before go last, so they never hold back the others.
        segments = sorted(
            self.event_log.sealed_segments(kind),
            key=lambda segment: (self._strikes.get(segment.name, 0), segment.name),
        )
        shipped = 0
        failed: list[tuple[Path, Exception]] = []
        for segment in segments:
            try:
                parts = split_by_day(segment_table(kind, segment))
            except Exception as error:
                self._count_failure(kind)
                self._quarantine(kind, segment, f"its records cannot become parquet: {error}")
                continue
            try:
                self._upload(kind, segment, parts)
            except Exception as error:
                self._count_failure(kind)
                log.warning(
                    "lake %s: shipping %s failed, will retry: %s",
                    redact(self.lake_uri),
                    segment.name,
                    error,
                )
                failed.append((segment, error))
                if not shipped and len(failed) >= LAKE_DOWN_FAILURES:
                    break
                continue
            self._strikes.pop(segment.name, None)
            shipped += 1
        if shipped:
            # The lake took other segments in this round: these ones are at fault.
            for segment, last_error in failed:
                strikes = self._strikes[segment.name] = self._strikes.get(segment.name, 0) + 1
                if strikes >= MAX_UPLOAD_STRIKES:
                    reason = (
                        f"the lake refused it in {strikes} rounds while taking other segments; "
                        f"last error: {last_error}"
                    )
                    self._quarantine(kind, segment, reason)
        return shipped

    def _quarantine(self, kind: str, segment: Path, reason: str) -> None:
        self._strikes.pop(segment.name, None)
        try:
            kept = self.event_log.quarantine(kind, segment, reason)
        except OSError as error:
            log.error("%s segment %s cannot be quarantined (%s): %s", kind, segment, error, reason)
            return
        log.error(
            "%s segment %s cannot be shipped, so it is quarantined (kept, not retried) as %s: %s",
            kind,
            segment.name,
            kept,
            reason,
        )

    def _count_failure(self, kind: str) -> None:
        self.metrics.event_ship_failures.labels(self.metrics.brand, kind).inc()

    def _publish_backlog(self) -> None:
        brand = self.metrics.brand
        self.metrics.events_pending.labels(brand).set(len(self.event_log.sealed_segments()))
        for kind in LAKE_DIRS:
            quarantined = len(self.event_log.quarantined_segments(kind))
            self.metrics.events_quarantined.labels(brand, kind).set(quarantined)

    def _upload(self, kind: str, segment: Path, parts: list[tuple[str, pa.Table]]) -> None:
        rows = 0
        for day, table in parts:
            folder = f"{self.root}/{partition_dir(LAKE_DIRS[kind], day)}"
            self._write_parquet(table, folder, segment.stem + ".parquet")
            rows += table.num_rows
        segment.unlink()
        self.metrics.events_shipped.labels(self.metrics.brand, kind).inc(rows)
        log.info("shipped %s (%d %s rows) to the lake", segment.name, rows, kind)

    def _write_parquet(self, table: pa.Table, folder: str, name: str) -> None:
        if isinstance(self.fs, LocalFileSystem):
            # Readers glob *.parquet: write under a hidden name, then rename (atomic locally).
            # fsync file and folder: the local segment is deleted right after.
            directory = Path(folder)
            directory.mkdir(parents=True, exist_ok=True)
            partial = directory / f".{name}.partial"
            with partial.open("wb") as file:
                pq.write_table(table, file)
                file.flush()
                os.fsync(file.fileno())
            partial.replace(directory / name)
            folder_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(folder_fd)
            finally:
                os.close(folder_fd)
        else:
            # A block blob becomes visible only when committed on close: no partial file.
            with self.fs.open(f"{folder}/{name}", "wb") as file:
                pq.write_table(table, file)
