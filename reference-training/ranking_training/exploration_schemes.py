"""How the service explores: the ranking schemes that produce exploration logs, and their
propensities.

Exploration schemes, and the recommended one. A uniformly random k-permutation of the logging
top m (m >= k; m = k is "shuffle the top k") has exact propensities, 1/m for every top-m item
at every position, so weights are bounded by m and the estimate has no propensity error. A
Plackett-Luce sample from the scores supports every target, but only its position-1 marginal
(a softmax) is exact: later positions need Monte Carlo (`plackett_luce_marginals`), whose error
biases IPS (1/pi-hat is convex), and low-scored items get unbounded weights. Recommended:
the uniform k-permutation of the top m, with m somewhat above k (e.g. 2k) so that a retrain
whose top k leaves the champion's top k is still supported.
"""

from __future__ import annotations

import numpy as np


def uniform_top_m_propensities(m: int, k: int) -> np.ndarray:
    """P(the item at logging rank r is shown at position p), m x k, for a uniformly random
    k-permutation of the logging top m: 1/m for every r < m and p < k (m = k: shuffled top k).
    Items below the top m have propensity 0 at every position."""
    if not 1 <= k <= m:
        raise ValueError(f"exploration: expected 1 <= k <= m, got k={k}, m={m}")
    return np.full((m, k), 1.0 / m)


def sample_uniform_top_m(
    top_m: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shown items (requests x k) drawn as a uniformly random k-permutation of each row of
    `top_m` (requests x m, the logging policy's top m), and their propensities (all 1/m)."""
    n, m = top_m.shape
    uniform_top_m_propensities(m, k)
    order = np.argsort(rng.random((n, m)), axis=1)[:, :k]
    return np.take_along_axis(top_m, order, axis=1), np.full((n, k), 1.0 / m)


def sample_plackett_luce(
    scores: np.ndarray, k: int, rng: np.random.Generator, temperature: float = 1.0
) -> np.ndarray:
    """Column indices (requests x k) of a Plackett-Luce sample from `scores` (requests x m),
    drawn with the Gumbel top-k trick: argsort of scores / temperature + Gumbel noise."""
    noisy = scores / temperature + rng.gumbel(size=scores.shape)
    return np.argsort(-noisy, axis=1)[:, :k]


def plackett_luce_marginals(
    scores: np.ndarray,
    k: int,
    rng: np.random.Generator,
    samples: int = 10_000,
    temperature: float = 1.0,
) -> np.ndarray:
    """P(candidate j shown at position p) under Plackett-Luce, requests x m x k.

    Position 1 is exact (softmax of scores / temperature). Positions 2..k are Monte Carlo
    frequencies over `samples` draws: the exact marginal sums over every ordered prefix, which
    grows as m!/(m-p+1)!. Their standard error is sqrt(P(1-P)/samples), and IPS with estimated
    propensities is biased upward for small ones (E[1/pi-hat] > 1/pi)."""
    n, m = scores.shape
    counts = np.zeros(n * m * k)
    request = np.arange(n)[None, :, None]
    position = np.arange(k)[None, None, :]
    for start in range(0, samples, 64):
        block = min(64, samples - start)
        noisy = scores / temperature + rng.gumbel(size=(block, n, m))
        drawn = np.argsort(-noisy, axis=2)[:, :, :k]
        counts += np.bincount(((request * m + drawn) * k + position).ravel(), minlength=n * m * k)
    counts = counts.reshape(n, m, k)
    marginals = counts / samples
    logits = scores / temperature
    first = np.exp(logits - logits.max(axis=1, keepdims=True))
    marginals[:, :, 0] = first / first.sum(axis=1, keepdims=True)
    return marginals
