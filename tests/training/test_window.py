"""The data window: a run today reads today's events, and validates on the newest day with data."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from ranking_training.__main__ import build_parser, config_from_args
from ranking_training.features import RankingMatrix
from ranking_training.split import split_by_time

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


def test_validation_is_today_once_today_has_requests() -> None:
    # Window of days 0..3 (ends at 4); today (day 3) has requests.
    train, valid = split_by_time(_matrix([0.5, 1.5, 2.5, 3.5, 3.6]), 0.0, 4 * DAY, 1)
    assert list(valid.request_ts / DAY) == [3.5, 3.6]
    # Day 0 is the warm-up day (its snapshot is empty), left out of a window this long.
    assert list(train.request_ts / DAY) == [1.5, 2.5]


def test_validation_is_the_newest_day_with_requests_before_today_has_any() -> None:
    # Same window, but nothing logged today yet: yesterday validates instead of an empty day.
    train, valid = split_by_time(_matrix([0.5, 1.5, 2.5, 2.6]), 0.0, 4 * DAY, 1)
    assert list(valid.request_ts / DAY) == [2.5, 2.6]
    assert list(train.request_ts / DAY) == [0.5, 1.5]
