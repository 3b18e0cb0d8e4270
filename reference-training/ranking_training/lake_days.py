"""Stage 1's work on one `date=` partition, as tasks of `ranking_training.lake_window`.

A `DayPart` is one day's events where its task ran: read and validated (`read_day`), its
impressions deduplicated (`drop_impressions`), then settled with every bucket's verdict
(`settle_day`: the feedback that survives, labels, the ranked-list check). The driver only
learns `DayCounts` of a day, never its rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

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

from ranking_training.data import (
    EXPLORATION_COLUMNS,
    FEEDBACK_COLUMNS,
    IMPRESSION_COLUMNS,
    Digest,
    EventFiles,
    content_digest,
    event_seconds,
    read_catalog,
    read_events,
    to_frame,
)
from ranking_training.errors import DataError
from ranking_training.lake_buckets import (
    BucketDay,
    feedback_rows,
    impression_ids,
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


def day_impression_ids(part: DayPart, buckets: int) -> tuple[pa.Table, ...]:
    assert part.impressions is not None
    return impression_ids(part.impressions.table, buckets)


def day_request_keys(part: DayPart, buckets: int) -> tuple[pa.Table, ...]:
    assert part.impressions is not None
    return request_keys(part.impressions.table, buckets)


def day_feedback_rows(part: DayPart, buckets: int) -> tuple[pa.Table, ...]:
    return feedback_rows(part.feedback.table, buckets)


def day_counts(part: DayPart) -> DayCounts:
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


def bucket_totals(days: list[BucketDay]) -> tuple[int, int, tuple[int, int, str] | None]:
    return (
        sum(d.duplicates for d in days),
        sum(d.unmatched for d in days),
        next((d.split_request for d in days if d.split_request), None),
    )


def day_digests(part: DayPart) -> tuple[Digest, Digest]:
    impressions: Digest = (0, 0, 0)
    if part.impressions is not None:
        impressions = content_digest(to_frame(part.impressions.table))
    return impressions, content_digest(to_frame(part.feedback.table))


def read_catalog_or_error(lake_uri: str) -> pd.DataFrame | str:
    """The catalog, or the message of its `DataError`."""
    try:
        return read_catalog(lake_uri)
    except DataError as error:
        return str(error)


def catalog_problem(catalog: pd.DataFrame | str) -> str | None:
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
