"""Stage 2 on day partitions: point-in-time features, computed where each day's rows live.

A request's features come from a `FeatureSnapshot` as of its day's start and its session (its
user's last clicks before it). Both are built from small aggregates of each day, combined in
day order on the cluster:

- per day (`summarise_day`): impressions and clicks per catalog item, clicks per (user,
  category), and the day's clicks;
- running over the days (`advance`): the sums, and each user's last `SESSION_LENGTH` clicks.
  The state before a day is that day's snapshot (`RunningState.snapshot`) and the part of its
  sessions older than the day;
- per day (`day_matrix`): `features.ranking_matrix` with a `DayEncoding`, the very
  `EncodedEvents.features` and `ranking_features.build_encoded_feature_matrix` that the
  in-memory `build_training_matrix` and the service run. A day is whole requests
  (`lake_window` refuses a request on two days): no partition cuts one.

The driver receives counts per day and the snapshot at the window's end (the serving artifact:
items, and clicking users x categories), never rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
import pyarrow.compute as pc
from ranking_features import FeatureSnapshot
from ranking_features.events import CLICK
from ranking_features.snapshot import category_share, global_ctr

from ranking_training.cluster import Task
from ranking_training.data import day_start, event_seconds, to_frame
from ranking_training.day_codes import CatalogCodes, ClickingUsers, ClickLog
from ranking_training.errors import DataError
from ranking_training.features import (
    NO_LABELS,
    DayEncoding,
    RankingMatrix,
    item_codes_of,
    ranking_matrix,
)
from ranking_training.lake_days import DayPart
from ranking_training.lake_window import LakeWindow
from ranking_training.split import DAY_SECONDS, WindowBounds, window_bounds

IMPRESSION_FEATURE_COLUMNS = ["request_id", "ts", "user_id", "item_id", "position"]


@dataclass(frozen=True)
class DaySummary:
    """One day's aggregates (counts of events before the window's end)."""

    item_impressions: np.ndarray
    item_clicks: np.ndarray
    # Sparse clicks per (user, category): cell = user x categories + category.
    cells: np.ndarray
    cell_clicks: np.ndarray
    clicks: ClickLog


@dataclass(frozen=True)
class RunningState:
    """The window's aggregates of everything before `as_of` (a day's start, or the end)."""

    as_of: float
    item_impressions: np.ndarray
    item_clicks: np.ndarray
    user_category_clicks: np.ndarray  # users x categories, flat
    tail: ClickLog  # each user's last SESSION_LENGTH clicks

    def snapshot(
        self, codes: CatalogCodes, users: ClickingUsers, window_start: float
    ) -> FeatureSnapshot:
        """What `EncodedEvents.snapshot` gives for `as_of`, from the sums instead of events."""
        impressions = self.item_impressions.astype(np.float64)
        clicks = self.item_clicks.astype(np.float64)
        user_category = self.user_category_clicks.reshape(len(users.ids), len(codes.categories))
        return FeatureSnapshot(
            as_of=float(self.as_of),
            window_start=float(window_start),
            categories=codes.categories,
            item_ids=codes.item_ids,
            item_category=codes.item_category,
            item_published_at=codes.item_published_at,
            item_impressions=impressions,
            item_clicks=clicks,
            user_ids=users.ids,
            user_category_clicks=user_category,
            global_ctr=global_ctr(impressions.sum(), clicks.sum()),
            global_category_share=category_share(user_category.sum(axis=0)),
        )


@dataclass
class WindowFeatures:
    """The window's training rows as one `RankingMatrix` per impression day, where built, and
    what the gate window's days need later (their states and clicks)."""

    window: LakeWindow
    bounds: WindowBounds
    matrices: list[Task]
    codes: Task
    users: Task
    # The impression days that meet the gate window: index -> (state before it, its summary).
    gate_days: dict[int, tuple[Task, Task]]
    # Per impression day: requests, rows, whether a row has a label, the newest request.
    stats: list[tuple[int, int, bool, float | None]]
    snapshot: FeatureSnapshot

    def gather(self) -> RankingMatrix:
        """The whole matrix in this process (tests; the job never gathers it)."""
        return concat_matrices(self.window.cluster.compute(self.matrices))

    def release_matrices(self) -> None:
        """Let the workers free the day matrices (split into windows, they are not needed)."""
        self.matrices = []


def build_features(window: LakeWindow, validation_days: int) -> WindowFeatures:
    """Every impression day's matrix; the window must have been read with a dismiss label."""
    if not window.labelled:
        raise DataError(NO_LABELS)
    cluster = window.cluster
    parts = window.parts
    days = [window.data_from + timedelta(days=i) for i in range(len(parts))]
    bounds = window_bounds(
        day_start(days[window.newest_day]),
        window.window_start,
        window.window_end,
        validation_days,
    )
    codes = cluster.task(CatalogCodes.of, window.catalog)
    users = cluster.task(_sorted_union, [cluster.task(_click_users, p) for p in parts])
    codes, users = cluster.persist([codes, users])
    summaries = [cluster.task(summarise_day, p, codes, users, window.window_end) for p in parts]
    state = cluster.task(start_state, window.window_start, codes, users)
    states = []
    for day, summary in zip(days, summaries, strict=True):
        states.append(state)
        state = cluster.task(advance, state, summary, day_start(day) + DAY_SECONDS)
    final = cluster.task(
        _final_snapshot, state, codes, users, window.window_start, window.window_end
    )
    n = len(window.impression_parts)
    matrices = [
        cluster.task(
            day_matrix, parts[i], states[i], summaries[i], codes, users, window.window_start
        )
        for i in range(n)
    ]
    gate = [
        i
        for i in range(n)
        if day_start(days[i]) < bounds.gate_end
        and day_start(days[i]) + DAY_SECONDS > bounds.gate_start
    ]
    kept = cluster.persist([*matrices, *(states[i] for i in gate), *(summaries[i] for i in gate)])
    matrices = kept[:n]
    gate_days = {day: (kept[n + j], kept[n + len(gate) + j]) for j, day in enumerate(gate)}
    *stats, snapshot = cluster.compute([cluster.task(_stats, m) for m in matrices] + [final])
    window.keep_only(set(gate))
    return WindowFeatures(window, bounds, matrices, codes, users, gate_days, stats, snapshot)


def summarise_day(
    part: DayPart, codes: CatalogCodes, users: ClickingUsers, window_end: float
) -> DaySummary:
    """The day's counts of events before `window_end`, and its clicks."""
    n_items, n_categories = len(codes.item_ids), len(codes.categories)
    item_impressions = np.zeros(n_items, dtype=np.int64)
    if part.impressions is not None:
        rows = codes.rows(part.impressions.table["item_id"])
        item_impressions = np.bincount(rows[rows >= 0], minlength=n_items)
    clicks = _clicks(part, users)
    items = codes.rows(clicks.item)
    counted = (clicks.ts < window_end) & (items >= 0)
    item_clicks = np.bincount(items[counted], minlength=n_items)
    cell = clicks.user[counted] * n_categories + codes.item_category[items[counted]]
    cells, cell_clicks = np.unique(cell, return_counts=True)
    return DaySummary(item_impressions, item_clicks, cells, cell_clicks, clicks)


def start_state(as_of: float, codes: CatalogCodes, users: ClickingUsers) -> RunningState:
    n_items = len(codes.item_ids)
    return RunningState(
        as_of=as_of,
        item_impressions=np.zeros(n_items, dtype=np.int64),
        item_clicks=np.zeros(n_items, dtype=np.int64),
        user_category_clicks=np.zeros(len(users.ids) * len(codes.categories), dtype=np.int64),
        tail=ClickLog.empty(),
    )


def advance(state: RunningState, day: DaySummary, as_of: float) -> RunningState:
    """The state after one more day (its events are before `as_of`)."""
    user_category = state.user_category_clicks.copy()
    np.add.at(user_category, day.cells, day.cell_clicks)
    return RunningState(
        as_of=as_of,
        item_impressions=state.item_impressions + day.item_impressions,
        item_clicks=state.item_clicks + day.item_clicks,
        user_category_clicks=user_category,
        tail=ClickLog.concat([state.tail, day.clicks]).last_per_user(),
    )


def day_matrix(
    part: DayPart,
    state: RunningState,
    summary: DaySummary,
    codes: CatalogCodes,
    users: ClickingUsers,
    window_start: float,
) -> RankingMatrix:
    """The day's requests, point in time: the snapshot as of its start, sessions from the
    clicks before each request (the state's tail, then the day's own)."""
    assert part.impressions is not None and part.labels is not None
    table = part.impressions.table
    if table.num_rows == 0:
        return empty_matrix()
    # Users as categories too: a day's rows name few users, and only first rows are looked up.
    table = table.set_column(
        table.column_names.index("user_id"),
        "user_id",
        pc.dictionary_encode(table["user_id"].combine_chunks()),
    )
    frame = to_frame(table.select(IMPRESSION_FEATURE_COLUMNS))
    day_users = users.codes(table["user_id"].combine_chunks().dictionary)
    items = frame["item_id"].astype("category")
    encoding, item_codes = encode_part(
        np.asarray(items.cat.categories, dtype=object), [state.tail, summary.clicks],
        day_users, codes, users, {state.as_of: state.snapshot(codes, users, window_start)},
    )  # fmt: skip
    row_codes = item_codes[items.cat.codes.to_numpy()]
    return ranking_matrix(frame, part.labels, encoding, row_codes, window_start)


def encode_part(
    item_ids: np.ndarray,
    clicks: list[ClickLog],
    request_users: np.ndarray,
    codes: CatalogCodes,
    users: ClickingUsers,
    snapshots: dict[float, FeatureSnapshot],
) -> tuple[DayEncoding, np.ndarray]:
    """A `DayEncoding` for requests of `request_users` (codes, -1 unknown) on the items
    `item_ids`, with the clicks their sessions need; and those items' codes in it."""
    log = ClickLog.concat(clicks)
    log = log.take(np.flatnonzero(np.isin(log.user, request_users[request_users >= 0])))
    click_ids = np.asarray(log.item.to_numpy(zero_copy_only=False), dtype=object)
    row_codes, click_codes = item_codes_of(codes.index, item_ids, click_ids)
    n_items = len(codes.item_ids)
    unknown = click_codes >= n_items
    encoding = DayEncoding(
        categories=codes.categories,
        item_ids=codes.item_ids,
        item_category=codes.item_category,
        item_published_at=codes.item_published_at,
        user_ids=users.ids,
        user_index=users.index,
        impression_items=np.zeros(0, dtype=np.int64),
        impression_ts=np.zeros(0),
        click_users=log.user,
        click_items=np.where(unknown, -1, click_codes),
        click_ts=log.ts,
        impression_codes=row_codes,
        click_codes=click_codes,
        unknown_codes=dict(
            zip(click_ids[unknown].tolist(), click_codes[unknown].tolist(), strict=True)
        ),
        snapshots=snapshots,
    )
    return encoding, row_codes


def empty_matrix() -> RankingMatrix:
    from ranking_features import FEATURE_NAMES

    return RankingMatrix(
        features=np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32),
        labels=np.zeros(0, dtype=np.int32),
        positions=np.zeros(0, dtype=np.int32),
        group_sizes=np.zeros(0, dtype=np.int64),
        request_ts=np.zeros(0),
    )


def concat_matrices(parts: list[RankingMatrix]) -> RankingMatrix:
    return RankingMatrix(
        features=np.concatenate([p.features for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        positions=np.concatenate([p.positions for p in parts]),
        group_sizes=np.concatenate([p.group_sizes for p in parts]),
        request_ts=np.concatenate([p.request_ts for p in parts]),
    )


def _clicks(part: DayPart, users: ClickingUsers) -> ClickLog:
    feedback = part.feedback.table
    clicks = feedback.filter(pc.equal(feedback["type"], CLICK))
    user = users.codes(clicks["user_id"])
    return ClickLog(user, clicks["item_id"].combine_chunks(), event_seconds(clicks))


def _click_users(part: DayPart) -> list[str]:
    feedback = part.feedback.table
    clicks = feedback.filter(pc.equal(feedback["type"], CLICK))
    return pc.unique(clicks["user_id"]).to_pylist()


def _sorted_union(lists: list[list[str]]) -> ClickingUsers:
    return ClickingUsers(sorted(set().union(*lists)))


def _final_snapshot(
    state: RunningState,
    codes: CatalogCodes,
    users: ClickingUsers,
    window_start: float,
    window_end: float,
) -> FeatureSnapshot:
    return replace(state, as_of=window_end).snapshot(codes, users, window_start)


def _stats(matrix: RankingMatrix) -> tuple[int, int, bool, float | None]:
    newest = float(matrix.request_ts.max()) if matrix.n_requests else None
    return matrix.n_requests, len(matrix.labels), bool((matrix.labels > 0).any()), newest
