"""Stage 1's rules that cross days, in hash buckets: no task sees every id of a window.

A day task cuts its rows into buckets by a hash of a key (`impression_ids`, `request_keys`,
`feedback_rows`); a bucket task gets that bucket of every day, in day order, and applies the
rules of `ranking_training.data` and `ranking_features.events` to it as the in-memory reading
applies them to the whole window:

- `first_events`, by event_id: an impression logged twice is kept where it was read first;
- `match_bucket`, by request_id (feedback without one by its event_id): feedback retries
  counted once (`first_of_each_event`), matched to impressions (`drop_unmatched_feedback`),
  labelled (`features.label_rows`), and a request whose impressions lie on two days found.

Equal keys share a bucket, so every rule sees all the rows it compares; the answers go back to
each day as row numbers (`BucketDay`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from ranking_features.events import POLICY_EXPLORE, first_of_each_event

from ranking_training.data import EventFiles, drop_unmatched_feedback, to_frame
from ranking_training.features import label_rows


@dataclass(frozen=True)
class BucketDay:
    """One bucket's verdicts on one day's rows (`match_bucket`)."""

    kept_feedback: np.ndarray  # the day's feedback rows that survive
    label_rows: np.ndarray  # the day's impression rows with a label, and their labels
    labels: np.ndarray
    explore_feedback: pd.DataFrame | None
    duplicates: int = 0
    unmatched: int = 0
    # (day, row, message) of the first request whose impressions lie on two days.
    split_request: tuple[int, int, str] | None = None


def impression_ids(impressions: pa.Table, buckets: int) -> tuple[pa.Table, ...]:
    """A day's impression event_ids with their rows, split into buckets by event_id."""
    ids = impressions["event_id"].combine_chunks()
    return _split(pa.table({"event_id": ids}), _bucket(ids, buckets), buckets)


def first_events(pieces: list[pa.Table]) -> tuple[np.ndarray, ...]:
    """One bucket of every day's event_ids: per day, the rows whose event_id an earlier row
    (earlier day, or earlier in the day) already has (`EventFiles.drop_duplicate_events`)."""
    table = pa.concat_tables(_with_day(pieces))
    events = EventFiles(table, [], np.zeros(table.num_rows, dtype=np.int64))
    events.drop_duplicate_events()
    return _dropped_per_day(pieces, events.table)


def request_keys(table: pa.Table, buckets: int) -> tuple[pa.Table, ...]:
    """A day's impressions as the keys feedback matches, split into buckets by request_id."""
    explore = pc.fill_null(pc.equal(table["policy"], POLICY_EXPLORE), False)
    keys = pa.table(
        {
            "request_id": table["request_id"].combine_chunks(),
            "user_id": table["user_id"].combine_chunks(),
            "item_id": table["item_id"].combine_chunks(),
            "explore": explore,
        }
    )
    return _split(keys, _bucket(keys["request_id"].combine_chunks(), buckets), buckets)


def feedback_rows(table: pa.Table, buckets: int) -> tuple[pa.Table, ...]:
    """A day's feedback, split into buckets by request_id (by event_id without one), so
    that every retry of an event and every impression it may match share a bucket."""
    key = pc.coalesce(table["request_id"], table["event_id"]).combine_chunks()
    return _split(table, _bucket(key, buckets), buckets)


def match_bucket(
    keys: list[pa.Table],
    feedback: list[pa.Table],
    window_end: float,
    dismiss_label: int | None,
    impressions_dir: str,
    days: list[str],
) -> tuple[BucketDay, ...]:
    """One bucket of every day: the feedback rules (`data.load_lake`) on its feedback, against
    the impressions of the same requests; per day, what survives and the labels."""
    # Copied into fresh buffers: pieces that crossed the network may be unaligned for Acero.
    impressions = pa.concat_tables(_with_day(keys)).combine_chunks()
    requests = pc.dictionary_encode(impressions["request_id"].combine_chunks())
    split = _split_request(impressions, requests, impressions_dir, days)
    table = pa.concat_tables(_with_day(feedback)).combine_chunks()
    events = EventFiles(table, [], np.zeros(table.num_rows, dtype=np.int64))
    duplicates = events.keep(first_of_each_event(events.table))
    unmatched = drop_unmatched_feedback(events, impressions, window_end)
    kept = events.table
    impression_day = impressions["_day"].to_numpy()
    impression_row = impressions["_row"].to_numpy()
    labels = np.zeros(impressions.num_rows, dtype=np.int32)
    frame = to_frame(kept.select(["request_id", "item_id", "type"]))
    if dismiss_label is not None and impressions.num_rows:
        items = pc.dictionary_encode(impressions["item_id"].combine_chunks())
        keys_frame = pa.table({"request_id": requests, "item_id": items}).to_pandas()
        labels = label_rows(keys_frame, frame, dismiss_label)
    explore = _explore_feedback(impressions, frame)
    kept_day = kept["_day"].to_numpy()
    kept_row = kept["_row"].to_numpy()
    result = []
    for i in range(len(days)):
        mine = impression_day == i
        explore_here = None
        if explore is not None:
            explore_here = explore[explore["_day"] == i].drop(columns="_day")
        result.append(
            BucketDay(
                kept_feedback=kept_row[kept_day == i],
                label_rows=impression_row[mine],
                labels=labels[mine],
                explore_feedback=explore_here,
                duplicates=duplicates if i == 0 else 0,
                unmatched=unmatched if i == 0 else 0,
                split_request=split if i == 0 else None,
            )
        )
    return tuple(result)


def _bucket(values: pa.Array, buckets: int) -> np.ndarray:
    """Each value's bucket: a stable hash of it, modulo `buckets`."""
    if buckets == 1:
        return np.zeros(len(values), dtype=np.int64)
    encoded = pc.dictionary_encode(values)
    hashes = pd.util.hash_array(encoded.dictionary.to_numpy(zero_copy_only=False))
    of_value = (hashes % np.uint64(buckets)).astype(np.int64)
    return of_value[encoded.indices.to_numpy(zero_copy_only=False)]


def _split(table: pa.Table, bucket: np.ndarray, buckets: int) -> tuple[pa.Table, ...]:
    """`table` with each row's index as `_row`, cut into `buckets` pieces (rows in order)."""
    table = table.append_column("_row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    if buckets == 1:
        return (table,)
    order = np.argsort(bucket, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(bucket, minlength=buckets))]
    ordered = table.take(pa.array(order))
    return tuple(ordered.slice(bounds[b], bounds[b + 1] - bounds[b]) for b in range(buckets))


def _with_day(pieces: list[pa.Table]) -> list[pa.Table]:
    return [
        piece.append_column("_day", pa.array(np.full(piece.num_rows, i, dtype=np.int32)))
        for i, piece in enumerate(pieces)
    ]


def _dropped_per_day(pieces: list[pa.Table], kept: pa.Table) -> tuple[np.ndarray, ...]:
    kept_day = kept["_day"].to_numpy()
    kept_row = kept["_row"].to_numpy()
    return tuple(
        np.setdiff1d(piece["_row"].to_numpy(), kept_row[kept_day == i], assume_unique=True)
        for i, piece in enumerate(pieces)
    )


def _split_request(
    impressions: pa.Table, requests: pa.DictionaryArray, impressions_dir: str, days: list[str]
) -> tuple[int, int, str] | None:
    """The first request (by day, then row) whose impressions lie in two partitions: its rows
    share its time, so such a request is a writer's error, and a day alone could not group it."""
    if impressions.num_rows == 0:
        return None
    codes = requests.indices.to_numpy()
    day = impressions["_day"].to_numpy()
    first = np.full(codes.max() + 1, len(days), dtype=np.int64)
    np.minimum.at(first, codes, day)
    last = np.zeros(codes.max() + 1, dtype=np.int64)
    np.maximum.at(last, codes, day)
    spread = np.flatnonzero(last[codes] > first[codes])
    if len(spread) == 0:
        return None
    row = int(spread[np.lexsort((impressions["_row"].to_numpy()[spread], day[spread]))[0]])
    request = codes[row]
    request_id = impressions["request_id"][row].as_py()
    return (
        int(day[row]),
        int(impressions["_row"][row].as_py()),
        f"{impressions_dir}: column 'request_id' {request_id!r} has rows in date="
        f"{days[first[request]]} and date={days[last[request]]}; a request's rows share its "
        "time, so its partition; fix the writer",
    )


def _explore_feedback(impressions: pa.Table, feedback: pd.DataFrame) -> pd.DataFrame | None:
    """The matched feedback naming an explore request, with the request's day (`_day`)."""
    explore = impressions.filter(impressions["explore"])
    if explore.num_rows == 0 or feedback.empty:
        return None
    days = pd.Series(
        explore["_day"].to_numpy(), index=explore["request_id"].to_numpy(zero_copy_only=False)
    )
    days = days[~days.index.duplicated()]
    linked = feedback[feedback["request_id"].isin(days.index)]
    return linked.assign(_day=days.reindex(linked["request_id"]).to_numpy()).reset_index(drop=True)
