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

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
from ranking_features.events import IMPRESSIONS_DIR

from ranking_training.cluster import Task, TrainingCluster
from ranking_training.data import (
    Digest,
    EventFiles,
    LakeData,
    content_digest,
    days_between,
    no_mature_impressions,
    to_frame,
    window_bounds,
    window_fingerprint,
)
from ranking_training.errors import DataError
from ranking_training.lake_buckets import first_events, match_bucket
from ranking_training.lake_days import (
    DayCounts,
    DayPart,
    bucket_totals,
    catalog_problem,
    day_counts,
    day_digests,
    day_feedback_rows,
    day_impression_ids,
    day_request_keys,
    drop_impressions,
    plain_strings,
    read_catalog_or_error,
    read_day,
    settle_day,
)


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
            [self.cluster.task(day_digests, part) for part in self._all_parts()]
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
    read, catalog, first = _read_days(cluster, lake_uri, days, window_end)
    _raise_read_errors(first[:-1], first[-1], lake_uri, data_from, data_to, window_end)
    deduped = _deduplicate_impressions(cluster, read[:-1])
    matched = _match_feedback(cluster, deduped, read, lake_uri, days, window_end, dismiss_label)
    settled = [
        cluster.task(settle_day, part, [bucket[i] for bucket in matched])
        for i, part in enumerate([*deduped, read[-1]])
    ]
    parts = cluster.persist(settled)
    summaries = cluster.compute(
        [cluster.task(day_counts, p) for p in parts]
        + [cluster.task(bucket_totals, [bucket[i] for i in range(len(days))])
           for bucket in matched]
    )  # fmt: skip
    counts: list[DayCounts] = summaries[: len(days)]
    totals: list[tuple[int, int, tuple[int, int, str] | None]] = summaries[len(days) :]
    _raise_settled_errors(counts, totals)
    duplicates = sum(c.impressions for c in first[:-1]) - sum(c.impressions for c in counts)
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
        newest_day=max(i for i, c in enumerate(counts) if c.impressions),
        labelled=None if dismiss_label is None else any(c.labelled for c in counts),
    )


def _read_days(
    cluster: TrainingCluster, lake_uri: str, days: list[date], window_end: float
) -> tuple[list[Task], Task, list[Any]]:
    """Each day read where it is kept (the last day for its feedback only), and the catalog;
    and what the driver learns first: each day's counts, then the catalog's error or None."""
    n_impression_days = len(days) - 1
    read = [
        cluster.task(read_day, lake_uri, day, window_end, i < n_impression_days)
        for i, day in enumerate(days)
    ]
    catalog = cluster.task(read_catalog_or_error, lake_uri)
    *read, catalog = cluster.persist([*read, catalog])
    first = cluster.compute(
        [cluster.task(day_counts, p) for p in read] + [cluster.task(catalog_problem, catalog)]
    )
    return read, catalog, first


def _deduplicate_impressions(cluster: TrainingCluster, read: list[Task]) -> list[Task]:
    """The impression days without an event_id read before (where it was read first)."""
    buckets, n = cluster.buckets, len(read)
    ids = [cluster.task(day_impression_ids, p, buckets, nout=buckets) for p in read]
    drops = [
        cluster.task(first_events, [piece[b] for piece in ids], nout=n) for b in range(buckets)
    ]
    return [cluster.task(drop_impressions, read[i], [drop[i] for drop in drops]) for i in range(n)]


def _match_feedback(
    cluster: TrainingCluster,
    deduped: list[Task],
    read: list[Task],
    lake_uri: str,
    days: list[date],
    window_end: float,
    dismiss_label: int | None,
) -> list[Task]:
    """Per bucket, feedback deduplicated, matched and labelled where each request's rows
    meet (`lake_buckets.match_bucket`): one verdict per day."""
    buckets = cluster.buckets
    keys = [cluster.task(day_request_keys, p, buckets, nout=buckets) for p in deduped]
    rows = [cluster.task(day_feedback_rows, p, buckets, nout=buckets) for p in read]
    return [
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


def _raise_settled_errors(
    counts: list[DayCounts], totals: list[tuple[int, int, tuple[int, int, str] | None]]
) -> None:
    """A request on two days (the first by day and row), then a repeated item in a list."""
    split = [t[2] for t in totals if t[2] is not None]
    if split:
        raise DataError(min(split)[2])
    for day in counts:
        if day.ranked_list_error:
            raise DataError(day.ranked_list_error)


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
