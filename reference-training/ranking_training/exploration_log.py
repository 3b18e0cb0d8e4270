"""The exploration log the counterfactual estimators read, and the target policy's positions on it.

One row per item the service showed on an exploration request, with the probability that the
logging policy showed it there (`ranking_training.counterfactual` module docstring). The log is
held as dense integer codes so that the estimators can work with `np.bincount`; it is checked
on construction, and each error names the column that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

LOG_COLUMNS = ("request_id", "user_id", "item_id", "position", "propensity", "clicked")


class ExplorationLogError(ValueError):
    """An exploration log that the estimators cannot use; the message names the column."""


@dataclass(frozen=True, eq=False)
class ExplorationLog:
    """Exploration impressions, one row per item shown, as integer codes for vectorised use.

    `request` and `user` are dense codes (0..n_requests-1, 0..n_users-1), and each request
    belongs to one user. `position` is 1-based; `propensity` is P(logging policy showed this item
    at this position). `*_ids` map codes back to the lake's ids when the log came from a table.
    """

    request: np.ndarray
    user: np.ndarray
    item: np.ndarray
    position: np.ndarray
    propensity: np.ndarray
    clicked: np.ndarray
    converted: np.ndarray
    n_requests: int
    n_users: int
    request_ids: np.ndarray | None = None
    user_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        rows = len(self.request)
        for name in ("user", "item", "position", "propensity", "clicked", "converted"):
            if len(getattr(self, name)) != rows:
                raise ExplorationLogError(
                    f"exploration log: {name}: expected {rows} rows like request, "
                    f"got {len(getattr(self, name))}"
                )
        _check_rows(
            "request",
            (self.request < 0) | (self.request >= self.n_requests),
            f"codes in [0, {self.n_requests})",
            self.request,
        )
        _check_rows(
            "user",
            (self.user < 0) | (self.user >= self.n_users),
            f"codes in [0, {self.n_users})",
            self.user,
        )
        _check_rows("position", self.position < 1, "1-based positions >= 1", self.position)
        bad = ~((self.propensity > 0) & (self.propensity <= 1))
        _check_rows("propensity", bad, "probabilities in (0, 1]", self.propensity)
        if rows and (self.user != self.request_user[self.request]).any():
            raise ExplorationLogError(
                "exploration log: user_id: expected one user per request_id, got several"
            )

    @classmethod
    def from_table(cls, table: pd.DataFrame | pa.Table) -> ExplorationLog:
        """A log from a pandas DataFrame or pyarrow Table with `LOG_COLUMNS` (+ `converted`)."""
        import pandas as pd

        frame = table if isinstance(table, pd.DataFrame) else table.to_pandas()
        missing = [c for c in LOG_COLUMNS if c not in frame.columns]
        if missing:
            raise ExplorationLogError(
                f"exploration log: {', '.join(missing)}: expected columns {list(LOG_COLUMNS)} "
                f"(+ optional converted), got {list(frame.columns)}"
            )
        request, request_ids = pd.factorize(frame["request_id"])
        user, user_ids = pd.factorize(frame["user_id"])
        item, item_ids = pd.factorize(frame["item_id"])
        converted = frame["converted"] if "converted" in frame.columns else np.zeros(len(frame))
        return cls(
            request=request.astype(np.int64),
            user=user.astype(np.int64),
            item=item.astype(np.int64),
            position=frame["position"].to_numpy(np.int64),
            propensity=frame["propensity"].to_numpy(np.float64),
            clicked=np.asarray(frame["clicked"], dtype=np.float64),
            converted=np.asarray(converted, dtype=np.float64),
            n_requests=len(request_ids),
            n_users=len(user_ids),
            request_ids=np.asarray(request_ids),
            user_ids=np.asarray(user_ids),
            item_ids=np.asarray(item_ids),
        )

    @cached_property
    def request_user(self) -> np.ndarray:
        """The user code of each request (requests without rows get user 0)."""
        owner = np.zeros(self.n_requests, dtype=np.int64)
        owner[self.request] = self.user
        return owner

    def reward(self, conversion_weight: float = 0.0) -> np.ndarray:
        """Per-row reward: clicked + conversion_weight * converted."""
        return self.clicked + conversion_weight * self.converted


def _check_rows(column: str, bad: np.ndarray, expected: str, values: np.ndarray) -> None:
    if bad.any():
        raise ExplorationLogError(
            f"exploration log: {column}: expected {expected}, got {values[bad][0]!r} "
            f"in {int(bad.sum())} rows"
        )


def positions_from_scores(group: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """1-based rank of each row within its group by descending score (ties by row order).

    Score each request's *whole* candidate set with the target model, rank it here, then
    `align_positions` onto the log: ranking only the logged rows would ignore the candidates
    the target would have put above them."""
    group = np.asarray(group, dtype=np.int64)
    n = len(group)
    order = np.lexsort((np.arange(n), -np.asarray(scores, dtype=np.float64), group))
    sorted_group = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_group)) + 1]
    lengths = np.diff(np.r_[starts, n])
    positions = np.empty(n, dtype=np.int64)
    positions[order] = np.arange(n) - np.repeat(starts, lengths) + 1
    return positions


def align_positions(
    log: ExplorationLog, request: np.ndarray, item: np.ndarray, position: np.ndarray
) -> np.ndarray:
    """Target position of each log row from (request, item, position) rows of the target's
    ranking, in the log's codes; 0 where the target did not rank that item for that request."""
    if len(request) == 0:
        return np.zeros(len(log.request), dtype=np.int64)
    width = int(max(log.item.max(initial=0), np.max(item))) + 1
    keys = np.asarray(request, dtype=np.int64) * width + np.asarray(item, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    wanted = log.request * width + log.item
    at = np.minimum(np.searchsorted(sorted_keys, wanted), len(keys) - 1)
    sorted_position = np.asarray(position, dtype=np.int64)[order]
    return np.where(sorted_keys[at] == wanted, sorted_position[at], 0)
