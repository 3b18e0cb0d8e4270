"""Stages 3, 5 and 6 on day partitions: the time split, the offline evaluation and the gate's
inputs, computed where the rows are.

`split_days` cuts each day's matrix at the windows' bounds (`split.window_bounds`: whole
requests, by their time), so the training, early-stopping and gate windows are lists of pieces
on the workers. The biased evaluation runs as one task over the gate window's pieces, with the
boosters sent to it. The counterfactual gate gets its explore requests (`gate.exploration_slice`
on the gate days' explore impressions and their matched feedback) and their pool features
(`gate.pool_features` with a `DayEncoding` of the gate days' snapshots and the explore users'
clicks): small, so the driver decides with them as it always has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from ranking_features.events import CLICK

from ranking_training.cluster import Task
from ranking_training.data import EventFiles, LakeData, to_frame
from ranking_training.day_codes import CatalogCodes, ClickingUsers
from ranking_training.day_features import (
    DaySummary,
    RunningState,
    WindowFeatures,
    concat_matrices,
    encode_part,
)
from ranking_training.evaluate import Evaluation, evaluate, offline_check_failures, score
from ranking_training.features import EncodedEvents, RankingMatrix
from ranking_training.gate_exploration import (
    ExplorationSlice,
    PoolFeatures,
    exploration_slice,
    pool_features,
)
from ranking_training.lake_days import DayPart, plain_strings
from ranking_training.metrics import ranking_metrics
from ranking_training.split import WindowBounds, check_parts

EXAMPLE_ROWS = 50
"""Gate rows logged as the model's input example (its MLflow signature)."""


@dataclass(frozen=True)
class GateEvaluation:
    """The biased metrics on the gate window, the offline checks, and an input example."""

    evaluation: Evaluation
    failures: list[str]
    example: np.ndarray


@dataclass
class WindowParts:
    """The three windows as pieces of day matrices, where they were built."""

    features: WindowFeatures
    train: list[Task]
    early_stopping: list[Task]
    gate: list[Task]
    counts: dict[str, int]

    @property
    def bounds(self) -> WindowBounds:
        return self.features.bounds

    @property
    def train_start(self) -> float:
        return self.bounds.train_start

    @property
    def early_stopping_start(self) -> float:
        return self.bounds.early_stopping_start

    @property
    def gate_start(self) -> float:
        return self.bounds.gate_start

    @property
    def gate_end(self) -> float:
        return self.bounds.gate_end

    def evaluate(self, booster: Any, champion: Any | None) -> GateEvaluation:
        """The new model's (and the champion's, when it can score) biased metrics."""
        cluster = self.features.window.cluster
        task = cluster.task(evaluate_gate, self.gate, booster, champion)
        result: GateEvaluation = self.features.window.cluster.compute([task])[0]
        return result

    def exploration(self) -> ExplorationSlice | None:
        """The gate window's explore requests (`gate.exploration_slice`)."""
        window = self.features.window
        days = sorted(self.features.gate_days)
        cluster = window.cluster
        task = cluster.task(
            _exploration,
            [window.parts[i] for i in days],
            window.window_start,
            window.window_end,
            self.bounds.gate_start,
            self.bounds.gate_end,
        )
        found: ExplorationSlice | None = window.cluster.compute([task])[0]
        return found

    def pool_features(self, exploration: ExplorationSlice) -> PoolFeatures:
        """Each explore request's pool, featurised point in time (`gate.pool_features`)."""
        return self.on_gate_encoding(pool_features, exploration, users=exploration.request_user_ids)

    def on_gate_encoding(
        self, run: Callable[..., Any], *args: Any, users: np.ndarray | None = None
    ) -> Any:
        """`run(*args, encoding, window_start)` on the cluster, with the `EncodedEvents` of the
        gate days for the requests of `users` (ids; all the gate days' users when None)."""
        features = self.features
        days = sorted(features.gate_days)
        cluster = features.window.cluster
        task = cluster.task(
            _on_gate_encoding,
            run,
            args,
            users,
            [features.window.parts[i] for i in days],
            [features.gate_days[i][0] for i in days],
            [features.gate_days[i][1] for i in days],
            features.codes,
            features.users,
            features.window.window_start,
        )
        return features.window.cluster.compute([task])[0]

    def on_gate_data(self, run: Callable[..., Any], *args: Any) -> Any:
        """`run(data, *args)` on the cluster, `data` the gate days as a `LakeData`: their
        impressions and feedback, the catalog, and, as click feedback, the older clicks of
        their users that sessions need. For what reads a window the in-memory way."""
        features = self.features
        window = features.window
        days = sorted(features.gate_days)
        cluster = window.cluster
        data = cluster.task(
            _gate_lake_data,
            [window.parts[i] for i in days],
            features.gate_days[days[0]][0],
            window.catalog,
            features.users,
            window.window_start,
            window.window_end,
        )
        return cluster.compute([cluster.task(run, data, *args)])[0]


def split_days(features: WindowFeatures, validation_days: int) -> WindowParts:
    """Cut every day's matrix at the windows' bounds; refuse a window nothing can be learnt
    from (`split.check_parts`, the messages of `split_by_time`)."""
    cluster = features.window.cluster
    window = features.window
    starts = [window.window_start + 86_400.0 * i for i in range(len(window.impression_parts))]
    pieces: dict[str, list[Task]] = {}
    for name, (start, end) in features.bounds.parts().items():
        pieces[name] = [
            cluster.task(take_window, matrix, start, end)
            for matrix, day in zip(features.matrices, starts, strict=True)
            if day < end and day + 86_400.0 > start
        ]
    names = list(pieces)
    persisted = cluster.persist([p for name in names for p in pieces[name]])
    for name in names:
        pieces[name], persisted = persisted[: len(pieces[name])], persisted[len(pieces[name]) :]
    features.release_matrices()
    stats = {
        name: cluster.compute([cluster.task(_piece_stats, p) for p in pieces[name]])
        for name in names
    }
    check_parts(
        {name: any(s[0] > 0 and s[2] for s in stats[name]) for name in names}, validation_days
    )

    def total(name: str, column: int) -> int:
        return sum(s[column] for s in stats[name])

    return WindowParts(
        features=features,
        train=pieces["training"],
        early_stopping=pieces["early-stopping"],
        gate=pieces["gate"],
        counts={
            "train_rows": total("training", 1),
            "train_requests": total("training", 0),
            "early_stopping_requests": total("early-stopping", 0),
            "gate_rows": total("gate", 1),
            "gate_requests": total("gate", 0),
        },
    )


def take_window(matrix: RankingMatrix, start: float, end: float) -> RankingMatrix:
    """The requests of `matrix` with start <= time < end (`matrix` itself when that is all)."""
    ts = matrix.request_ts
    inside = (ts >= start) & (ts < end)
    return matrix if inside.all() else matrix.take_requests(inside)


def evaluate_gate(
    pieces: list[RankingMatrix], booster: Any, champion: Any | None
) -> GateEvaluation:
    """`evaluate.evaluate` and the offline checks on the whole gate window, in one task."""
    gate = concat_matrices(pieces)
    evaluation = evaluate(booster, gate)
    if champion is not None:
        evaluation.champion = ranking_metrics(gate.labels, score(champion, gate), gate.group_sizes)
    failures = offline_check_failures(evaluation, booster, gate)
    return GateEvaluation(evaluation, failures, gate.features[:EXAMPLE_ROWS].copy())


def _piece_stats(matrix: RankingMatrix) -> tuple[int, int, bool]:
    return matrix.n_requests, len(matrix.labels), bool((matrix.labels > 0).any())


def _exploration(
    parts: list[DayPart], window_start: float, window_end: float, start: float, end: float
) -> ExplorationSlice | None:
    """`exploration_slice` on the gate days' explore impressions and their feedback."""
    rows, feedback = [], []
    for part in parts:
        assert part.impressions is not None
        table = part.impressions.table
        explore = table.filter(pc.fill_null(pc.equal(table["policy"], "explore"), False))
        if explore.num_rows:
            rows.append(to_frame(explore))
        if part.explore_feedback is not None:
            feedback.append(part.explore_feedback)
    if not rows:
        return None
    empty = pd.DataFrame({"request_id": [], "item_id": [], "type": []})
    data = LakeData(
        impressions=pd.concat(rows, ignore_index=True),
        feedback=pd.concat(feedback, ignore_index=True) if feedback else empty,
        catalog=pd.DataFrame(),
        window_start=window_start,
        window_end=window_end,
        files_read=0,
        duplicates_dropped=0,
    )
    return exploration_slice(data, start, end)


def _gate_lake_data(
    parts: list[DayPart],
    state: RunningState,
    catalog: pd.DataFrame,
    users: ClickingUsers,
    window_start: float,
    window_end: float,
) -> LakeData:
    impressions = [p.impressions for p in parts if p.impressions is not None]
    merged = EventFiles(
        pa.concat_tables([plain_strings(e.table) for e in impressions]),
        [path for e in impressions for path in e.paths],
        np.zeros(0, dtype=np.int64),
    )
    merged.encode("request_id", "item_id")
    frame = to_frame(merged.table)
    tail = state.tail.take(
        np.flatnonzero(np.isin(state.tail.user, users.codes(np.asarray(frame["user_id"].unique()))))
    )
    older = pd.DataFrame(
        {
            "event_id": None,
            "request_id": None,
            "ts": tail.ts,
            "user_id": np.asarray(users.ids, dtype=object)[tail.user],
            "item_id": tail.item.to_numpy(zero_copy_only=False),
            "type": CLICK,
        }
    )
    feedback = [to_frame(p.feedback.table) for p in parts]
    return LakeData(
        impressions=frame,
        feedback=pd.concat([older, *feedback], ignore_index=True),
        catalog=catalog,
        window_start=window_start,
        window_end=window_end,
        files_read=0,
        duplicates_dropped=0,
    )


def _on_gate_encoding(
    run: Callable[..., Any],
    args: tuple[Any, ...],
    user_ids: np.ndarray | None,
    parts: list[DayPart],
    states: list[RunningState],
    summaries: list[DaySummary],
    codes: CatalogCodes,
    users: ClickingUsers,
    window_start: float,
) -> Any:
    if user_ids is None:
        user_ids = np.concatenate(
            [
                pc.unique(p.impressions.table["user_id"]).to_numpy(zero_copy_only=False)
                for p in parts
                if p.impressions is not None
            ]
        )
    request_users = users.codes(np.asarray(user_ids, dtype=object))
    snapshots = {s.as_of: s.snapshot(codes, users, window_start) for s in states}
    encoding: EncodedEvents
    encoding, _ = encode_part(
        np.array([], dtype=object),
        [states[0].tail, *(s.clicks for s in summaries)],
        request_users,
        codes,
        users,
        snapshots,
    )
    return run(*args, encoding, window_start)
