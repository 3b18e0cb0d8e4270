"""Exploration: which of the model's rankings a request shows, and with what propensity.

The contract is docs/architecture.md, "Impressions and exploration". A share `exploration` of
the requests a model ranks is explored, drawn per request: the list shown is a uniformly
random k-permutation of the model's top `m = min(EXPLORATION_POOL_FACTOR * k, n)` candidates
(the pool), so every pool item is at every position with probability 1/m, the propensity each
impression row logs. The other requests exploit (the model's top k, propensity 1), and so does
the fallback: without a model there is no ranking to explore around.

The draws come from one `random.Random` per process, used only on the event loop's thread:
~50 ns for the coin and a few microseconds for a 20-of-40 sample, against ~0.5 ms a request.
Seeded (`RECPLAT_EXPLORATION_SEED`), a run replays its draws.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from ranking_features.events import EXPLORATION_POOL_FACTOR, POLICY_EXPLOIT, POLICY_EXPLORE


@dataclass(frozen=True, slots=True)
class ShownList:
    """The list one request shows, as indices into its candidates."""

    shown: np.ndarray
    """Candidate indices in the order shown (position 1 first)."""
    policy: str
    """POLICY_EXPLOIT or POLICY_EXPLORE."""
    propensity: float
    """P(the item at a position is there | the request's policy), the same at every position."""
    pool: np.ndarray | None
    """Explore only: the candidate indices the permutation drew from, in the model's order."""


class Exploration:
    """Decides, request by request, whether to show the model's top k or explore its top m."""

    def __init__(self, share: float, seed: int | None = None) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"exploration share: a number from 0 to 1, got {share}")
        self.share = share
        self._random = random.Random(seed)

    def choose(self, order: np.ndarray, k: int, *, explorable: bool) -> ShownList:
        """The list to show from `order` (candidate indices by descending model score), `k`
        items long (at most `len(order)`). `explorable` is False for the fallback ranking."""
        k = min(k, len(order))
        if explorable and self.share > 0.0 and self._random.random() < self.share:
            m = min(EXPLORATION_POOL_FACTOR * k, len(order))
            pool = order[:m]
            # An ordered sample without replacement: a uniform k-permutation of the pool.
            picks = self._random.sample(range(m), k)
            return ShownList(pool[picks], POLICY_EXPLORE, 1.0 / m, pool)
        return ShownList(order[:k], POLICY_EXPLOIT, 1.0, None)
