"""Stage 3: split requests by time: train on the older days, validate on the newest ones.

Never randomly: a random split would let the model learn from the future it is judged on.
Validation holds the newest `validation_days` days that have requests: the window may end
today, and until the services have logged anything today, yesterday is the newest day.
The window's first day is left out of training when the window is long enough: its snapshot is
empty (nothing happened before it), so its rows teach the model nothing serving will see.
"""

from __future__ import annotations

from ranking_training.errors import DataError
from ranking_training.features import RankingMatrix

WARMUP_DAYS = 1


def split_by_time(
    matrix: RankingMatrix, window_start: float, window_end: float, validation_days: int
) -> tuple[RankingMatrix, RankingMatrix]:
    """(train, valid): valid holds the requests of the newest `validation_days` days with data."""
    end = window_end
    if matrix.n_requests:
        days_in = (float(matrix.request_ts.max()) - window_start) // 86_400
        end = min(window_end, window_start + (days_in + 1) * 86_400)
    boundary = end - validation_days * 86_400
    in_valid = matrix.request_ts >= boundary
    warmup_end = window_start + WARMUP_DAYS * 86_400
    in_train = ~in_valid
    if boundary - warmup_end >= 2 * 86_400:
        in_train &= matrix.request_ts >= warmup_end
    train, valid = matrix.take_requests(in_train), matrix.take_requests(in_valid)
    for name, part in (("training", train), ("validation", valid)):
        if part.n_requests == 0 or not (part.labels > 0).any():
            raise DataError(
                f"data window: the {name} part has no request with a click or conversion "
                f"(validation = the last {validation_days} day(s)); widen the window "
                "(--from/--lookback-days) or wait for more feedback"
            )
    return train, valid
