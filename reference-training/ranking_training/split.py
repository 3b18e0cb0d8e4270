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
class WindowBounds:
    """Where the three windows start and end, [start, end) in epoch seconds."""

    train_start: float
    early_stopping_start: float
    gate_start: float
    gate_end: float

    def parts(self) -> dict[str, tuple[float, float]]:
        """Each window's [start, end), by the name its errors use."""
        return {
            "training": (self.train_start, self.early_stopping_start),
            "early-stopping": (self.early_stopping_start, self.gate_start),
            "gate": (self.gate_start, self.gate_end),
        }


@dataclass(frozen=True)
class TimeWindows(WindowBounds):
    """The three disjoint parts of a window, with their bounds."""

    train: RankingMatrix
    early_stopping: RankingMatrix
    gate: RankingMatrix


def window_bounds(
    last_request_ts: float | None, window_start: float, window_end: float, validation_days: int
) -> WindowBounds:
    """The windows of a window whose newest request is at `last_request_ts` (None: none)."""
    end = window_end
    if last_request_ts is not None:
        days_in = (last_request_ts - window_start) // DAY_SECONDS
        end = min(window_end, window_start + (days_in + 1) * DAY_SECONDS)
    length = validation_days * DAY_SECONDS
    gate_start = end - length
    early_stopping_start = gate_start - length
    train_start = window_start
    if early_stopping_start - (window_start + WARMUP_DAYS * DAY_SECONDS) >= 2 * DAY_SECONDS:
        train_start = window_start + WARMUP_DAYS * DAY_SECONDS
    return WindowBounds(train_start, early_stopping_start, gate_start, end)


def check_parts(learnable: dict[str, bool], validation_days: int) -> None:
    """Refuse a split where a window (`WindowBounds.parts` name) has no request with a click or
    conversion: it could not train, stop or judge anything."""
    for name in ("training", "early-stopping", "gate"):
        if not learnable[name]:
            raise DataError(
                f"data window: the {name} part has no request with a click or conversion "
                f"(gate = the newest {validation_days} mature day(s), early stopping the "
                f"{validation_days} before, training the rest); widen the window "
                "(--from/--lookback-days) or wait for more feedback"
            )


def split_by_time(
    matrix: RankingMatrix, window_start: float, window_end: float, validation_days: int
) -> TimeWindows:
    """Train, early-stopping and gate windows, each `validation_days` days for the latter two."""
    last = float(matrix.request_ts.max()) if matrix.n_requests else None
    bounds = window_bounds(last, window_start, window_end, validation_days)
    ts = matrix.request_ts
    parts = {
        name: matrix.take_requests((ts >= start) & (ts < end))
        for name, (start, end) in bounds.parts().items()
    }
    check_parts(
        {
            name: part.n_requests > 0 and bool((part.labels > 0).any())
            for name, part in parts.items()
        },
        validation_days,
    )
    return TimeWindows(
        **vars(bounds),
        train=parts["training"],
        early_stopping=parts["early-stopping"],
        gate=parts["gate"],
    )
