"""Stage 3: split requests by time into three disjoint windows: train, early-stop, gate.

Never randomly: a random split would let the model learn from the future it is judged on.
The windows, oldest to newest (docs/architecture.md, "Promotion gate"):

- **gate**: the newest `validation_days` days of *mature* data. Its explore requests are what
  the counterfactual gate judges on; its whole traffic gives the biased NDCG kept for
  reference. Nothing else sees it, so the model was not tuned on what judges it.
- **early stopping**: the `validation_days` days before the gate window; LightGBM stops
  boosting when NDCG on it stops improving.
- **train**: everything older. The window's first day is left out when the window is long
  enough: its snapshot is empty (nothing happened before it), so its rows teach the model
  nothing serving will see.

The windows end at the newest day that has requests, not at the window's end: until the
services have logged anything today, yesterday is the newest day. The window's end is already
the label-maturity cut-off (`data.load_lake`), so no window holds impressions whose feedback
may still be on its way.
"""

from __future__ import annotations

from dataclasses import dataclass

from ranking_training.errors import DataError
from ranking_training.features import RankingMatrix

WARMUP_DAYS = 1
DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class TimeWindows:
    """The three disjoint parts of a window, and their bounds [start, end) in epoch seconds."""

    train: RankingMatrix
    early_stopping: RankingMatrix
    gate: RankingMatrix
    train_start: float
    early_stopping_start: float
    gate_start: float
    gate_end: float


def split_by_time(
    matrix: RankingMatrix, window_start: float, window_end: float, validation_days: int
) -> TimeWindows:
    """Train, early-stopping and gate windows, each `validation_days` days for the latter two."""
    end = window_end
    if matrix.n_requests:
        days_in = (float(matrix.request_ts.max()) - window_start) // DAY_SECONDS
        end = min(window_end, window_start + (days_in + 1) * DAY_SECONDS)
    length = validation_days * DAY_SECONDS
    gate_start = end - length
    early_stopping_start = gate_start - length
    train_start = window_start
    if early_stopping_start - (window_start + WARMUP_DAYS * DAY_SECONDS) >= 2 * DAY_SECONDS:
        train_start = window_start + WARMUP_DAYS * DAY_SECONDS
    ts = matrix.request_ts
    windows = TimeWindows(
        train=matrix.take_requests((ts >= train_start) & (ts < early_stopping_start)),
        early_stopping=matrix.take_requests((ts >= early_stopping_start) & (ts < gate_start)),
        gate=matrix.take_requests((ts >= gate_start) & (ts < end)),
        train_start=train_start,
        early_stopping_start=early_stopping_start,
        gate_start=gate_start,
        gate_end=end,
    )
    for name, part in (
        ("training", windows.train),
        ("early-stopping", windows.early_stopping),
        ("gate", windows.gate),
    ):
        if part.n_requests == 0 or not (part.labels > 0).any():
            raise DataError(
                f"data window: the {name} part has no request with a click or conversion "
                f"(gate = the newest {validation_days} mature day(s), early stopping the "
                f"{validation_days} before, training the rest); widen the window "
                "(--from/--lookback-days) or wait for more feedback"
            )
    return windows
