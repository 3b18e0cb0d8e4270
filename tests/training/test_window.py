"""The data window: a run today reads today's mature events; train, early-stopping and gate
windows are disjoint, the gate on the newest day with data."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
import pytest
from ranking_training.__main__ import build_parser, config_from_args
from ranking_training.features import RankingMatrix
from ranking_training.split import split_by_time

pytestmark = pytest.mark.fast

DAY = 86_400.0


def _matrix(request_days: list[float]) -> RankingMatrix:
    """Two rows per request (one clicked), requests at the given day offsets from 0."""
    n = len(request_days)
    return RankingMatrix(
        features=np.zeros((2 * n, 3)),
        labels=np.tile([1.0, 0.0], n),
        positions=np.tile([1, 2], n),
        group_sizes=np.full(n, 2),
        request_ts=np.array(request_days) * DAY,
    )


def test_the_default_window_ends_today_so_todays_feedback_is_read() -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "--brand",
            "b",
            "--lake-uri",
            "file:///x",
            "--tracking-uri",
            "http://x",
            "--lookback-days",
            "3",
        ]
    )
    config = config_from_args(args, parser)
    today = datetime.now(UTC).date()
    assert config.data_to == today
    assert (config.data_to - config.data_from).days == 2


def test_the_gate_is_today_once_today_has_requests_and_early_stopping_the_day_before() -> None:
    # Window of days 0..4 (ends at 5); today (day 4) has requests.
    windows = split_by_time(_matrix([0.5, 1.5, 2.5, 3.5, 4.5, 4.6]), 0.0, 5 * DAY, 1)
    assert list(windows.gate.request_ts / DAY) == [4.5, 4.6]
    assert list(windows.early_stopping.request_ts / DAY) == [3.5]
    # Day 0 is the warm-up day (its snapshot is empty), left out of a window this long.
    assert list(windows.train.request_ts / DAY) == [1.5, 2.5]


def test_the_gate_is_the_newest_day_with_requests_before_today_has_any() -> None:
    # Same window, but nothing logged today yet: yesterday is the gate, not an empty day.
    windows = split_by_time(_matrix([0.5, 1.5, 2.5, 3.5, 3.6]), 0.0, 5 * DAY, 1)
    assert list(windows.gate.request_ts / DAY) == [3.5, 3.6]
    assert list(windows.early_stopping.request_ts / DAY) == [2.5]
    assert list(windows.train.request_ts / DAY) == [0.5, 1.5]


def test_train_early_stopping_and_gate_windows_are_disjoint_and_in_time_order() -> None:
    days = list(np.linspace(0.01, 9.99, 200))
    windows = split_by_time(_matrix(days), 0.0, 10 * DAY, 2)
    parts = [windows.train, windows.early_stopping, windows.gate]
    # Every request is in at most one part, and each part is entirely older than the next.
    assert sum(p.n_requests for p in parts) <= len(days)
    for older, newer in itertools.pairwise(parts):
        assert older.request_ts.max() < newer.request_ts.min()
    assert windows.gate.request_ts.min() >= windows.gate_start == 8 * DAY
    assert windows.early_stopping.request_ts.max() < windows.gate_start
    assert windows.early_stopping.request_ts.min() >= windows.early_stopping_start == 6 * DAY
    # The first (warm-up) day's snapshot is empty: left out of training.
    assert windows.train.request_ts.min() >= DAY


def test_the_window_ends_at_the_label_maturity_cut_off_of_the_run() -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "--brand", "b", "--lake-uri", "file:///x", "--tracking-uri", "http://x",
            "--run-at", "2025-01-31T10:00:00+00:00", "--label-delay-hours", "6",
        ]
    )  # fmt: skip
    config = config_from_args(args, parser)
    assert config.mature_before == datetime(2025, 1, 31, 4, tzinfo=UTC).timestamp()
