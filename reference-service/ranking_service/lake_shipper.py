"""Ships sealed event-log segments to the brand's lake as parquet, then deletes them.

One segment becomes one parquet file per day it spans, under the lake layout of DESIGN.md
(`events/<kind>/date=YYYY-MM-DD/<segment>.parquet`), with the schemas of
`ranking_features.events`. The file name is the segment's name, so re-shipping a segment after a
crash between upload and delete overwrites the same file instead of duplicating it. A local
segment is deleted only after its upload succeeded; failed uploads stay and are retried.
All storage goes through fsspec: `file://` locally, `abfs://` (adlfs) on Azure.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from ranking_features.events import (
    FEEDBACK_DIR,
    FEEDBACK_SCHEMA,
    IMPRESSION_SCHEMA,
    IMPRESSIONS_DIR,
    partition_dir,
)
from ranking_features.lake import open_lake

from ranking_service.event_log import EventLog, read_segment
from ranking_service.metrics import ServiceMetrics
from ranking_service.settings import SettingsError, redact

log = logging.getLogger(__name__)

LAKE_DIRS = {"impressions": IMPRESSIONS_DIR, "feedback": FEEDBACK_DIR}


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
    ]
)
MICROSECONDS_PER_DAY = 86_400_000_000
SHIPPER_NICENESS = 10


def impression_table(records: pa.Table) -> pa.Table:
    """One row per item served: a ranking record of n items expands to n rows."""
    items = records["items"].combine_chunks()
    parents = pc.list_parent_indices(items)
    offsets = items.offsets.to_numpy()
    # 1-based rank of each item within its list.
    position = np.arange(len(parents), dtype=np.int32) - offsets[parents.to_numpy()] + 1
    rows = records.select(
        ["request_id", "ts", "user_id", "model_name", "model_version", "variant", "brand"]
    ).take(parents)
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


def segment_table(kind: str, segment: Path) -> pa.Table:
    """The lake rows of one segment, in the kind's parquet schema."""
    if kind == "impressions":
        return impression_table(read_impressions(segment))
    return feedback_table(list(read_segment(segment)))


def split_by_day(table: pa.Table) -> list[tuple[str, pa.Table]]:
    """The rows of each UTC day (by `ts`), oldest day first."""
    day = pc.divide(pc.cast(table["ts"], pa.int64()), MICROSECONDS_PER_DAY).to_numpy()
    parts = []
    for number in np.unique(day):
        name = datetime.fromtimestamp(int(number) * 86_400, tz=UTC).date().isoformat()
        parts.append((name, table.filter(pa.array(day == number))))
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
            raise SettingsError(f"RECPLAT_LAKE_URI: {error}") from None
        self._stop = threading.Event()
        # Serialises rounds: the periodic one and the final one at shutdown.
        self._round = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lake-shipper", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the loop, then seal and ship what is left (graceful shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.ship_once(seal=True)

    def _run(self) -> None:
        # Serving comes first: this thread runs at a lower CPU priority (Linux nice is per
        # thread), so converting a large segment does not stretch /rank's tail latency.
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SHIPPER_NICENESS)
        except OSError as error:
            log.info("lake shipper keeps the default CPU priority: %s", error)
        # Leftovers of a crashed run go first, before any new segment is sealed.
        self.ship_once(seal=False)
        while not self._stop.wait(self.interval_s):
            self.ship_once(seal=True)

    def ship_once(self, *, seal: bool) -> int:
        """Seal the active segments (if asked) and ship every sealed one; returns how many."""
        with self._round:
            if seal:
                for kind in LAKE_DIRS:
                    self.event_log.seal(kind)
            shipped = 0
            for kind in LAKE_DIRS:
                for segment in self.event_log.sealed_segments(kind):
                    try:
                        self._ship_segment(kind, segment)
                    except Exception as error:
                        # Keep the segment; the next round retries it, in order.
                        self.metrics.event_ship_failures.labels(self.metrics.brand, kind).inc()
                        log.warning(
                            "lake %s: shipping %s failed, will retry: %s",
                            redact(self.lake_uri),
                            segment.name,
                            error,
                        )
                        break
                    shipped += 1
            pending = len(self.event_log.sealed_segments())
            self.metrics.events_pending.labels(self.metrics.brand).set(pending)
            return shipped

    def _ship_segment(self, kind: str, segment: Path) -> None:
        rows = 0
        for day, table in split_by_day(segment_table(kind, segment)):
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
