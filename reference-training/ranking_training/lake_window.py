"""Stage 1 on day partitions: read, validate and deduplicate a window where its days are read.

One task per `date=` partition reads that day's impressions and feedback with the rules and
messages of `ranking_training.data`. What crosses days goes through buckets keyed by a hash
(`ranking_training.lake_buckets`), so no task, and never the driver, sees every id of the
window: impressions are deduplicated by event_id (kept where first read: the earlier day, then
the earlier file and row); feedback is deduplicated, matched to impressions and labelled where a
request's impressions and every feedback naming it meet, whatever their days.

Each day then keeps its surviving rows, labels and the feedback on its explore requests. The
driver only ever holds counts and error messages, and raises the error the window's first bad
file gives, in the order of reading: impression files by day, no mature impressions, feedback
files by day, the catalog, a request on two days, a repeated item in a ranked list.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from ranking_features.events import (
    FEEDBACK_DIR,
    FEEDBACK_SCHEMA,
    IMPRESSION_SCHEMA,
    IMPRESSIONS_DIR,
)
from ranking_features.lake import open_lake

from ranking_training.cluster import Task, TrainingCluster
from ranking_training.data import (
    EXPLORATION_COLUMNS,
    FEEDBACK_COLUMNS,
    IMPRESSION_COLUMNS,
    Digest,
    EventFiles,
    LakeData,
    content_digest,
    days_between,
    event_seconds,
    no_mature_impressions,
    read_catalog,
    read_events,
    to_frame,
    window_bounds,
    window_fingerprint,
)
from ranking_training.errors import DataError
from ranking_training.lake_buckets import (
    BucketDay,
    feedback_rows,
    first_events,
    impression_ids,
    match_bucket,
    request_keys,
)


@dataclass
class DayPart:
    """One `date=` partition's events, where its task ran. Tasks return new parts, never
    change one: a recomputed task must find its inputs as they were."""

    day: date
    # Mature impressions; None for the day read past the window (feedback only).
    impressions: EventFiles | None
    feedback: EventFiles
    immature: int = 0
    impression_error: str | None = None
    feedback_error: str | None = None
    # Set by `settle_day`: per impression row its label (when the read asked for labels), the
    # matched feedback on this day's explore requests, and the ranked-list check's verdict.
    labels: np.ndarray | None = None
    explore_feedback: pd.DataFrame | None = None
    ranked_list_error: str | None = None


@dataclass(frozen=True)
class DayCounts:
    """What the driver learns of a day: counts and errors, never rows."""

    impressions: int
    immature: int
    feedback: int
    files: int
    impression_error: str | None
    feedback_error: str | None
    ranked_list_error: str | None = None
    # Whether an impression row has a positive label (a click or a conversion).
    labelled: bool = False


@dataclass
class LakeWindow:
    """A window of the lake as day partitions where they were read; the driver holds counts."""

    cluster: TrainingCluster
    lake_uri: str
    data_from: date
    data_to: date
    window_start: float
    window_end: float
    # One per day, data_from to data_to + 1 (feedback only), persisted where read.
    parts: list[Task]
    catalog: Task
    counts: dict[str, int] = field(default_factory=dict)
    # The newest impression day with mature impressions (index into the days), and whether
    # any impression has a positive label (None when the read asked for no labels).
    newest_day: int = 0
    labelled: bool | None = None

    @property
    def impression_parts(self) -> list[Task]:
        return self.parts[:-1]

    def keep_only(self, days: set[int]) -> None:
        """Let the workers free every other day's events (the features are built; the gate's
        days are still read). The window can then no longer be fingerprinted or gathered."""
        self.parts = [part if i in days else None for i, part in enumerate(self.parts)]

    def _all_parts(self) -> list[Task]:
        if any(part is None for part in self.parts):
            raise RuntimeError("the window's events were released after the features were built")
        return self.parts

    def fingerprint(self) -> str:
        """`LakeData.fingerprint` of this window, from each day's digests."""
        digests = self.cluster.compute(
            [self.cluster.task(_digests, part) for part in self._all_parts()]
            + [self.cluster.task(content_digest, self.catalog)]
        )
        days: list[tuple[Digest, Digest]] = digests[:-1]
        return window_fingerprint(
            [d[0] for d in days],
            [d[1] for d in days],
            digests[-1],
            self.window_start,
            self.window_end,
        )

    def to_lake_data(self) -> LakeData:
        """The whole window in this process (the in-memory `LakeData` of `data.load_lake`)."""
        parts: list[DayPart] = self.cluster.compute(self._all_parts())
        catalog = self.cluster.compute([self.catalog])[0]
        impressions = [p.impressions for p in parts if p.impressions is not None]
        merged = EventFiles(
            pa.concat_tables([plain_strings(e.table) for e in impressions]),
            [path for e in impressions for path in e.paths],
            np.zeros(0, dtype=np.int64),
        )
        merged.encode("request_id", "item_id")
        feedback = pa.concat_tables([p.feedback.table for p in parts])
        return LakeData(
            impressions=to_frame(merged.table),
            feedback=to_frame(feedback),
            catalog=catalog,
            window_start=self.window_start,
            window_end=self.window_end,
            files_read=self.counts["files_read"],
            duplicates_dropped=self.counts["duplicates_dropped"],
            unmatched_feedback=self.counts["unmatched_feedback"],
            immature_impressions=self.counts["immature_impressions"],
        )


def read_window(
    cluster: TrainingCluster,
    lake_uri: str,
    data_from: date,
    data_to: date,
    mature_before: float | None = None,
    dismiss_label: int | None = None,
) -> LakeWindow:
    """Read and validate [data_from, data_to] on `cluster` (`data.load_lake`'s rules); with a
    `dismiss_label`, each impression row is labelled too (`features.label_rows`)."""
    window_start, window_end = window_bounds(data_from, data_to, mature_before)
    days = days_between(data_from, data_to + timedelta(days=1))
    n_impression_days = len(days) - 1
    read = [
        cluster.task(read_day, lake_uri, day, window_end, i < n_impression_days)
        for i, day in enumerate(days)
    ]
    catalog = cluster.task(_catalog, lake_uri)
    *read, catalog = cluster.persist([*read, catalog])
    *first, catalog_error = cluster.compute(
        [cluster.task(_counts, p) for p in read] + [cluster.task(_catalog_error, catalog)]
    )
    _raise_read_errors(first, catalog_error, lake_uri, data_from, data_to, window_end)

    buckets = cluster.buckets
    n = n_impression_days
    # Impressions: an event_id read twice is kept where it was read first.
    ids = [cluster.task(_impression_ids, p, buckets, nout=buckets) for p in read[:n]]
    drops = [
        cluster.task(first_events, [piece[b] for piece in ids], nout=n) for b in range(buckets)
    ]
    deduped = [
        cluster.task(drop_impressions, read[i], [drop[i] for drop in drops]) for i in range(n)
    ]
    # Feedback: deduplicated, matched and labelled where each request's rows meet.
    keys = [cluster.task(_request_keys, p, buckets, nout=buckets) for p in deduped]
    rows = [cluster.task(_feedback_rows, p, buckets, nout=buckets) for p in read]
    matched = [
        cluster.task(
            match_bucket,
            [piece[b] for piece in keys],
            [piece[b] for piece in rows],
            window_end,
            dismiss_label,
            f"{lake_uri}/{IMPRESSIONS_DIR}",
            [d.isoformat() for d in days],
            nout=len(days),
        )
        for b in range(buckets)
    ]
    settled = [
        cluster.task(
            settle_day, deduped[i] if i < n else read[i], [bucket[i] for bucket in matched]
        )
        for i in range(len(days))
    ]
    parts = cluster.persist(settled)
    summaries = cluster.compute(
        [cluster.task(_counts, p) for p in parts]
        + [cluster.task(_bucket_totals, [bucket[i] for i in range(len(days))])
           for bucket in matched]
    )  # fmt: skip
    counts: list[DayCounts] = summaries[: len(days)]
    totals: list[tuple[int, int, tuple[int, int, str] | None]] = summaries[len(days) :]
    split = [t[2] for t in totals if t[2] is not None]
    if split:
        raise DataError(min(split)[2])
    for day in counts:
        if day.ranked_list_error:
            raise DataError(day.ranked_list_error)
    duplicates = sum(c.impressions for c in first) - sum(c.impressions for c in counts)
    newest_day = max(i for i, c in enumerate(counts) if c.impressions)
    return LakeWindow(
        cluster=cluster,
        lake_uri=lake_uri,
        data_from=data_from,
        data_to=data_to,
        window_start=window_start,
        window_end=window_end,
        parts=parts,
        catalog=catalog,
        counts={
            "impressions": sum(c.impressions for c in counts),
            "immature_impressions": sum(c.immature for c in counts),
            "feedback_events": sum(c.feedback for c in counts),
            "duplicates_dropped": duplicates + sum(t[0] for t in totals),
            "unmatched_feedback": sum(t[1] for t in totals),
            "files_read": sum(c.files for c in counts) + 1,
        },
        newest_day=newest_day,
        labelled=None if dismiss_label is None else any(c.labelled for c in counts),
    )


def read_day(lake_uri: str, day: date, window_end: float, impressions: bool) -> DayPart:
    """One partition's files, validated; a `DataError` is kept as the part's error, so the
    driver can report the one the window's reading order meets first."""
    fs, root = open_lake(lake_uri)
    part = DayPart(day, None, _no_feedback())
    name = [day.isoformat()]
    if impressions:
        try:
            read = read_events(
                fs, root, IMPRESSIONS_DIR, name, IMPRESSION_SCHEMA, IMPRESSION_COLUMNS,
                EXPLORATION_COLUMNS,
            )  # fmt: skip
            part.immature = read.keep(event_seconds(read.table) < window_end)
            part.impressions = read
        except DataError as error:
            part.impression_error = str(error)
    try:
        part.feedback = read_events(fs, root, FEEDBACK_DIR, name, FEEDBACK_SCHEMA, FEEDBACK_COLUMNS)
    except DataError as error:
        part.feedback_error = str(error)
    return part


def drop_impressions(part: DayPart, dropped: list[np.ndarray]) -> DayPart:
    rows = np.concatenate(dropped) if dropped else np.zeros(0, dtype=np.int64)
    if len(rows) == 0 or part.impressions is None:
        return part
    impressions = _copy(part.impressions)
    keep = np.ones(impressions.table.num_rows, dtype=bool)
    keep[rows] = False
    impressions.keep(keep)
    return replace(part, impressions=impressions)


def settle_day(part: DayPart, buckets: list[BucketDay]) -> DayPart:
    """The day's rows that survive every bucket, its labels, and its ranked-list check."""
    feedback = _copy(part.feedback)
    kept = np.concatenate([b.kept_feedback for b in buckets])
    keep = np.zeros(feedback.table.num_rows, dtype=bool)
    keep[kept] = True
    feedback.keep(keep)
    settled = replace(part, feedback=feedback)
    if part.impressions is None:
        return settled
    impressions = _copy(part.impressions)
    labels = np.zeros(impressions.table.num_rows, dtype=np.int32)
    for bucket in buckets:
        labels[bucket.label_rows] = bucket.labels
    explore = [b.explore_feedback for b in buckets if b.explore_feedback is not None]
    # Ids that repeat across a day are read as categories, sorted so that sorting by code
    # sorts by id: the feature stage groups and orders by them.
    impressions.encode("request_id", "item_id")
    ranked_list_error = None
    try:
        impressions.check_ranked_lists()
    except DataError as error:
        ranked_list_error = str(error)
    return replace(
        settled,
        impressions=impressions,
        labels=labels,
        explore_feedback=pd.concat(explore, ignore_index=True) if explore else None,
        ranked_list_error=ranked_list_error,
    )


def _impression_ids(part: DayPart, buckets: int) -> tuple[pa.Table, ...]:
    assert part.impressions is not None
    return impression_ids(part.impressions.table, buckets)


def _request_keys(part: DayPart, buckets: int) -> tuple[pa.Table, ...]:
    assert part.impressions is not None
    return request_keys(part.impressions.table, buckets)


def _feedback_rows(part: DayPart, buckets: int) -> tuple[pa.Table, ...]:
    return feedback_rows(part.feedback.table, buckets)


def _raise_read_errors(
    counts: list[DayCounts],
    catalog_error: str | None,
    lake_uri: str,
    data_from: date,
    data_to: date,
    window_end: float,
) -> None:
    """The first error of the window in reading order (module docstring)."""
    for day in counts:
        if day.impression_error:
            raise DataError(day.impression_error)
    if sum(day.impressions for day in counts) == 0:
        raise no_mature_impressions(lake_uri, data_from, data_to, window_end)
    for day in counts:
        if day.feedback_error:
            raise DataError(day.feedback_error)
    if catalog_error:
        raise DataError(catalog_error)


def _counts(part: DayPart) -> DayCounts:
    impressions = part.impressions
    return DayCounts(
        impressions=0 if impressions is None else impressions.table.num_rows,
        immature=part.immature,
        feedback=part.feedback.table.num_rows,
        files=len(part.feedback.paths) + (0 if impressions is None else len(impressions.paths)),
        impression_error=part.impression_error,
        feedback_error=part.feedback_error,
        ranked_list_error=part.ranked_list_error,
        labelled=part.labels is not None and bool((part.labels > 0).any()),
    )


def _bucket_totals(days: list[BucketDay]) -> tuple[int, int, tuple[int, int, str] | None]:
    return (
        sum(d.duplicates for d in days),
        sum(d.unmatched for d in days),
        next((d.split_request for d in days if d.split_request), None),
    )


def _digests(part: DayPart) -> tuple[Digest, Digest]:
    impressions: Digest = (0, 0, 0)
    if part.impressions is not None:
        impressions = content_digest(to_frame(part.impressions.table))
    return impressions, content_digest(to_frame(part.feedback.table))


def _catalog(lake_uri: str) -> pd.DataFrame | str:
    """The catalog, or the message of its `DataError`."""
    try:
        return read_catalog(lake_uri)
    except DataError as error:
        return str(error)


def _catalog_error(catalog: pd.DataFrame | str) -> str | None:
    return catalog if isinstance(catalog, str) else None


def _no_feedback() -> EventFiles:
    empty = pa.schema([FEEDBACK_SCHEMA.field(n) for n in FEEDBACK_COLUMNS]).empty_table()
    return EventFiles(empty, [], np.zeros(0, dtype=np.int64))


def _copy(events: EventFiles) -> EventFiles:
    return EventFiles(events.table, list(events.paths), events.source)


def plain_strings(table: pa.Table) -> pa.Table:
    """A table's dictionary columns back to plain strings (days encode their own)."""
    for i, column in enumerate(table.schema):
        if pa.types.is_dictionary(column.type):
            table = table.set_column(i, column.name, pc.cast(table[column.name], pa.string()))
    return table
