"""The simulated traffic a brand's service sees: the service's settings, one day's requests
as a scorer gets them, the client's click history it sends as sessions, and the scorers.

`recplat.simulation.lake.WorldLake` serves these requests and logs them; the sessions and the
frozen snapshot of `model_scorer` are why training rebuilds exactly the vectors a model scored
(the lake module's docstring).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from ranking_features import FeatureSnapshot, build_feature_matrix
from ranking_features.definition import SESSION_LENGTH
from ranking_features.events import EXPLORATION_POOL_FACTOR


@dataclass(frozen=True)
class TrafficSettings:
    """How the simulated service serves: volume, list sizes and exploration."""

    brand: str = "sim"
    start: date = date(2025, 1, 1)
    requests_per_day: int = 3000
    candidates: int = 60
    k: int = 10
    exploration: float = 0.2
    pool_factor: int = EXPLORATION_POOL_FACTOR
    categories: int = 6

    def __post_init__(self) -> None:
        if not 0 <= self.exploration <= 1:
            raise ValueError(
                f"traffic: exploration: expected a share in [0, 1], got {self.exploration}"
            )
        if not 1 <= self.k <= self.candidates:
            raise ValueError(
                f"traffic: k: expected 1 <= k <= candidates ({self.candidates}), got {self.k}"
            )


@dataclass(frozen=True, eq=False)
class RequestBatch:
    """One day's requests as a scorer sees them: ids as the service gets them, plus indices."""

    day: int
    times: np.ndarray  # requests: epoch seconds
    users: np.ndarray  # requests: world user index
    user_ids: list[str]
    candidates: np.ndarray  # requests x candidates: world item index, in the client's order
    candidate_ids: np.ndarray  # requests x candidates: item id
    # Per request: the session the client sends (item ids, newest last); empty when unknown.
    recent_items: list[tuple[str, ...]] = field(default_factory=list)

    def take(self, rows: np.ndarray, recent_items: list[tuple[str, ...]]) -> RequestBatch:
        """The requests `rows` of this batch, with the sessions the client sends for them."""
        return RequestBatch(
            day=self.day,
            times=self.times[rows],
            users=self.users[rows],
            user_ids=[self.user_ids[r] for r in rows],
            candidates=self.candidates[rows],
            candidate_ids=self.candidate_ids[rows],
            recent_items=recent_items,
        )


class ClickHistory:
    """The simulated client's record of its users' clicks, which it sends as sessions: a
    request's session is its user's latest `SESSION_LENGTH` clicks with a time strictly before
    the request's, newest last (what training rebuilds from the lake's click feedback)."""

    def __init__(self) -> None:
        self._clicks: dict[int, list[tuple[float, str]]] = {}

    def record(self, users: np.ndarray, times: np.ndarray, item_ids: np.ndarray) -> None:
        for user, ts, item_id in zip(users, times, item_ids, strict=True):
            insort(self._clicks.setdefault(int(user), []), (float(ts), str(item_id)))

    def sessions(self, users: np.ndarray, times: np.ndarray) -> list[tuple[str, ...]]:
        out = []
        for user, ts in zip(users, times, strict=True):
            clicks = self._clicks.get(int(user), [])
            end = bisect_left(clicks, (float(ts), ""))
            out.append(tuple(item for _, item in clicks[max(0, end - SESSION_LENGTH) : end]))
        return out


Scorer = Callable[[RequestBatch], np.ndarray]
"""A logging or target policy: scores (requests x candidates), higher shown first."""


def random_scorer(seed: int) -> Scorer:
    """A policy that knows nothing: uniformly random scores."""
    rng = np.random.default_rng(seed)

    def scores(batch: RequestBatch) -> np.ndarray:
        return rng.random(batch.candidates.shape)

    return scores


def model_scorer(booster: Any, snapshot: FeatureSnapshot) -> Scorer:
    """A LightGBM ranker served as the service serves it: features from `ranking_features`
    with the snapshot its training run logged (frozen: the service never refreshes it) and the
    session the client sends."""

    def scores(batch: RequestBatch) -> np.ndarray:
        n, c = batch.candidate_ids.shape
        features = build_feature_matrix(
            snapshot,
            user_ids=batch.user_ids,
            request_times=batch.times,
            row_request=np.repeat(np.arange(n), c),
            row_items=list(batch.candidate_ids.ravel()),
            recent_items=batch.recent_items or [()] * n,
        )
        return np.asarray(booster.predict(features), dtype=np.float64).reshape(n, c)

    return scores
