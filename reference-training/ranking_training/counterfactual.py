"""Counterfactual (off-policy) estimates of a ranking policy's online reward, from exploration logs.

The promotion gate (issue 14) has to say how a model that never served would do online. Plain
NDCG on the champion's own traffic cannot: clicks follow position, so the logged order wins.
This module estimates the online objective from the *exploration* slice, where the service
randomised the champion's ranking and logged the probability of each (item, position) it showed.

Estimand. For a deterministic target ranking policy pi and a cut-off k,
``V(pi, k) = E_request[ sum_{p <= k} reward(item pi puts at p, p) ]``: the expected reward per
request in the top k, with ``reward = clicked + w * converted`` (w = 0: clicks per request).

Item-position IPS. With N exploration requests and logged rows (i, p) of propensity
``pi0(i, p | request)`` = P(the logging policy showed i at p)::

    w = 1[target_pos(i) = p and p <= k] / pi0(i, p)
    IPS   = (1 / N) * sum_rows w * reward
    SNIPS = sum_{p <= k} (sum_{rows at p} w * reward) / (sum_{rows at p} w)

SNIPS normalises *per position*: under the support condition below, each position's weight sum
has expectation N, so dividing by it instead of N is the ratio estimator of each position's
reward (a position whose weight sum is 0 contributes 0). It trades a small bias for less
variance and for robustness to rows lost between service and lake.

Assumptions, exactly:
- Support: for every request and every p <= k, the item the target puts at p has pi0 > 0 at p.
  For a uniformly random k-permutation of the logging policy's top m
  (`ranking_training.exploration_schemes.sample_uniform_top_m`),
  that means the target's top-k set lies within the logging top m. Slots outside it are never
  observed: IPS then drops their reward (biased down); SNIPS fills them with the position's
  mean over matched rows.
- Position-based reward: an item's reward at p does not depend on the other items shown.
  Under a cascade (clicks above stop the scan, as in `recplat.simulation.truth`) it does, and
  both estimators are biased; benchmarks/bench_ope.py measures how much.

Intervals come from a bootstrap over users (a user's requests are resampled together, since
they are correlated), vectorised: per-user sums, then replicate weights per user (multinomial,
or Poisson(1)) times those sums. `paired_bootstrap_interval` applies the same user weights to two
target policies on the same log, for the difference new model minus champion or popularity.

The exploration log and the target's positions on it are in `ranking_training.exploration_log`;
the exploration schemes that produce such logs in `ranking_training.exploration_schemes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from ranking_training.exploration_log import ExplorationLog, ExplorationLogError

Estimator = Literal["ips", "snips", "pbm"]
IntervalMethod = Literal["percentile", "bca"]
Resampling = Literal["multinomial", "poisson"]

# Bootstrap replicates are drawn in blocks so memory stays (block x users), not (B x users).
_REPLICATE_BLOCK = 128


@dataclass(frozen=True, eq=False)
class _PositionSums:
    """Per-user sums the item-position estimators (IPS, SNIPS) are functions of; rows are the
    users in the log."""

    reward: np.ndarray  # users x k: sum of w * reward per position
    weight: np.ndarray  # users x k: sum of w per position
    requests: np.ndarray  # users: exploration requests
    estimator: str

    def value(self, user_weights: np.ndarray) -> Any:
        """The estimate with the users weighted by `user_weights` (replicates x users)."""
        return _value(
            user_weights @ self.reward,
            user_weights @ self.weight,
            user_weights @ self.requests,
            self.estimator,
        )


def _user_sums(
    log: ExplorationLog,
    target_position: np.ndarray,
    k: int,
    conversion_weight: float,
    estimator: str = "snips",
) -> _PositionSums | _ExaminationSums:
    target_position = _checked_target(log, target_position, k)
    if estimator == "pbm":
        return _examination_sums(log, target_position, k, conversion_weight)
    matched = (target_position == log.position) & (log.position <= k)
    weight = matched / log.propensity
    cell = log.user * k + np.minimum(log.position, k) - 1
    size = log.n_users * k
    reward = np.bincount(cell, weight * log.reward(conversion_weight), size).reshape(-1, k)
    weights = np.bincount(cell, weight, size).reshape(-1, k)
    requests, present = _requests_per_user(log)
    return _PositionSums(reward[present], weights[present], requests[present], estimator)


def _checked_target(log: ExplorationLog, target_position: np.ndarray, k: int) -> np.ndarray:
    target_position = np.asarray(target_position, dtype=np.int64)
    if len(target_position) != len(log.request):
        raise ExplorationLogError(
            f"target_position: expected one per log row ({len(log.request)}), "
            f"got {len(target_position)}"
        )
    if log.n_requests == 0:
        raise ExplorationLogError("exploration log: request_id: expected requests, got none")
    if k < 1:
        raise ValueError(f"k: expected a cut-off >= 1, got {k}")
    return target_position


def _requests_per_user(log: ExplorationLog) -> tuple[np.ndarray, np.ndarray]:
    requests = np.bincount(log.request_user, minlength=log.n_users).astype(np.float64)
    return requests, requests > 0


@dataclass(frozen=True, eq=False)
class _ExaminationSums:
    """Per-user sums of the examination-corrected estimator ("pbm", module docstring)."""

    reward: np.ndarray  # users x k: sum of reward / P(shown) by target position q
    exposure: np.ndarray  # users x (k * L): sum of 1 / P(shown) by (q, logged position p)
    clicks: np.ndarray  # users x L: clicks by logged position (examination)
    shows: np.ndarray  # users x L: rows by logged position
    requests: np.ndarray  # users
    k: int

    def value(self, user_weights: np.ndarray) -> Any:
        reward = user_weights @ self.reward
        shows = user_weights @ self.shows
        depth = shows.shape[-1]
        exposure = (user_weights @ self.exposure).reshape(*reward.shape, depth)
        examination = np.divide(
            user_weights @ self.clicks, shows, out=np.zeros_like(shows), where=shows > 0
        )
        # Examination at the target's positions; a position deeper than any logged one has
        # no estimate, and counts 0.
        at_target = np.zeros_like(reward)
        reach = min(self.k, depth)
        at_target[..., :reach] = examination[..., :reach]
        expected = np.einsum("...qp,...p->...q", exposure, examination)
        per_position = np.divide(
            reward * at_target, expected, out=np.zeros_like(reward), where=expected > 0
        )
        return per_position.sum(axis=-1)


def _examination_sums(
    log: ExplorationLog, target_position: np.ndarray, k: int, conversion_weight: float
) -> _ExaminationSums:
    depth = int(log.position.max())
    # P(the request showed this item at any position): the propensity times the request's
    # list length, for schemes whose propensity is the same at every position
    # (`ranking_training.exploration_schemes`); a uniform k-permutation of m gives k / m.
    length = np.bincount(log.request, minlength=log.n_requests)[log.request]
    inverse_shown = 1.0 / np.minimum(log.propensity * length, 1.0)
    targeted = (target_position >= 1) & (target_position <= k)
    q = np.where(targeted, target_position, 1) - 1
    users = log.n_users
    reward = np.bincount(
        log.user * k + q, targeted * inverse_shown * log.reward(conversion_weight), users * k
    ).reshape(users, k)
    exposure = np.bincount(
        (log.user * k + q) * depth + log.position - 1, targeted * inverse_shown, users * k * depth
    ).reshape(users, k * depth)
    cell = log.user * depth + log.position - 1
    clicks = np.bincount(cell, log.clicked, users * depth).reshape(users, depth)
    shows = np.bincount(cell, minlength=users * depth).astype(np.float64).reshape(users, depth)
    requests, present = _requests_per_user(log)
    return _ExaminationSums(
        reward[present],
        exposure[present],
        clicks[present],
        shows[present],
        requests[present],
        k,
    )


def _value(reward: np.ndarray, weight: np.ndarray, requests: np.ndarray, estimator: str) -> Any:
    """The estimate from (possibly bootstrap-weighted) totals; leading axes are replicates."""
    if estimator == "ips":
        return reward.sum(axis=-1) / requests
    per_position = np.divide(reward, weight, out=np.zeros_like(reward), where=weight > 0)
    return per_position.sum(axis=-1)


@dataclass(frozen=True, eq=False)
class PolicyValue:
    """IPS, SNIPS and the examination-corrected estimate of one target policy, with the
    diagnostics a gate should log."""

    ips: float
    snips: float
    pbm: float
    requests: int
    matched_rows: int
    # Per position: sum of weights / N. Its expectation is 1 under the support condition, so a
    # value well below 1 says the target puts items where the exploration never showed them.
    weight_per_request: np.ndarray

    def get(self, estimator: str) -> float:
        return float(getattr(self, estimator))


def estimate_policy_value(
    log: ExplorationLog, target_position: np.ndarray, k: int, conversion_weight: float = 0.0
) -> PolicyValue:
    """IPS, SNIPS and PBM of the target's expected reward per request in the top k."""
    sums = _user_sums(log, target_position, k, conversion_weight)
    assert isinstance(sums, _PositionSums)
    reward, weight, requests = sums.reward.sum(0), sums.weight.sum(0), sums.requests.sum()
    examination = _user_sums(log, target_position, k, conversion_weight, "pbm")
    matched = (np.asarray(target_position) == log.position) & (log.position <= k)
    return PolicyValue(
        ips=float(_value(reward, weight, requests, "ips")),
        snips=float(_value(reward, weight, requests, "snips")),
        pbm=float(examination.value(np.ones((1, len(sums.requests))))[0]),
        requests=int(requests),
        matched_rows=int(matched.sum()),
        weight_per_request=weight / max(requests, 1.0),
    )


def ips(
    log: ExplorationLog, target_position: np.ndarray, k: int, conversion_weight: float = 0.0
) -> float:
    """Item-position IPS: (1/N) * sum of 1[target_pos = p <= k] * reward / propensity."""
    return estimate_policy_value(log, target_position, k, conversion_weight).ips


def snips(
    log: ExplorationLog, target_position: np.ndarray, k: int, conversion_weight: float = 0.0
) -> float:
    """Self-normalised IPS, normalised per position by that position's weight sum."""
    return estimate_policy_value(log, target_position, k, conversion_weight).snips


def pbm(
    log: ExplorationLog, target_position: np.ndarray, k: int, conversion_weight: float = 0.0
) -> float:
    """The examination-corrected estimate (module docstring, "Examination-corrected")."""
    return estimate_policy_value(log, target_position, k, conversion_weight).pbm


@dataclass(frozen=True)
class Interval:
    """A bootstrap interval around `estimate` (a policy value, or a paired difference)."""

    estimate: float
    low: float
    high: float
    level: float
    method: str
    estimator: str
    replicates: int

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def bootstrap_interval(
    log: ExplorationLog,
    target_position: np.ndarray,
    k: int,
    *,
    estimator: Estimator = "snips",
    conversion_weight: float = 0.0,
    level: float = 0.95,
    replicates: int = 1000,
    method: IntervalMethod = "percentile",
    resampling: Resampling = "multinomial",
    seed: int = 0,
) -> Interval:
    """Interval for one target's value, resampling users (all their requests together)."""
    terms = [(_user_sums(log, target_position, k, conversion_weight, estimator), 1.0)]
    return _bootstrap(terms, estimator, level, replicates, method, resampling, seed)


def paired_bootstrap_interval(
    log: ExplorationLog,
    target_position: np.ndarray,
    baseline_position: np.ndarray,
    k: int,
    *,
    estimator: Estimator = "snips",
    conversion_weight: float = 0.0,
    level: float = 0.95,
    replicates: int = 1000,
    method: IntervalMethod = "percentile",
    resampling: Resampling = "multinomial",
    seed: int = 0,
) -> Interval:
    """Interval for value(target) - value(baseline) on the same log, same user weights for
    both, so the shared noise of the log cancels (e.g. new model minus champion)."""
    terms = [
        (_user_sums(log, target_position, k, conversion_weight, estimator), 1.0),
        (_user_sums(log, baseline_position, k, conversion_weight, estimator), -1.0),
    ]
    return _bootstrap(terms, estimator, level, replicates, method, resampling, seed)


_Terms = list[tuple[_PositionSums | _ExaminationSums, float]]


def _combined(terms: _Terms, user_weights: np.ndarray) -> Any:
    """sum_t coef_t * value_t, with the users weighted by `user_weights` (replicates x users)."""
    total: Any = 0.0
    for sums, coef in terms:
        total = total + coef * sums.value(user_weights)
    return total


def _bootstrap(
    terms: _Terms,
    estimator: str,
    level: float,
    replicates: int,
    method: str,
    resampling: str,
    seed: int,
) -> Interval:
    if not 0 < level < 1:
        raise ValueError(f"level: expected a probability in (0, 1), got {level}")
    if estimator not in ("ips", "snips", "pbm"):
        raise ValueError(f"estimator: expected ips, snips or pbm, got {estimator!r}")
    n_users = len(terms[0][0].requests)
    if n_users < 2:
        raise ExplorationLogError(f"exploration log: user_id: expected >= 2 users, got {n_users}")
    rng = np.random.default_rng(seed)
    estimate = float(_combined(terms, np.ones((1, n_users)))[0])
    draws = []
    for start in range(0, replicates, _REPLICATE_BLOCK):
        block = min(_REPLICATE_BLOCK, replicates - start)
        if resampling == "poisson":
            weights = rng.poisson(1.0, (block, n_users)).astype(np.float64)
        else:
            # Multinomial(n_users, uniform) counts per replicate, via one bincount.
            picks = rng.integers(0, n_users, (block, n_users)) + n_users * np.arange(block)[:, None]
            counts = np.bincount(picks.ravel(), minlength=block * n_users)
            weights = counts.reshape(block, n_users).astype(np.float64)
        draws.append(_combined(terms, weights))
    theta = np.concatenate(draws)
    theta = theta[np.isfinite(theta)]  # a Poisson replicate can draw no requests at all
    alpha = (1.0 - level) / 2.0
    if method == "bca":
        quantiles = _bca_quantiles(terms, estimate, theta, alpha)
    else:
        quantiles = (alpha, 1.0 - alpha)
    low, high = np.quantile(theta, quantiles)
    return Interval(estimate, float(low), float(high), level, method, estimator, len(theta))


def _bca_quantiles(
    terms: _Terms, estimate: float, theta: np.ndarray, alpha: float
) -> tuple[float, float]:
    """BCa's adjusted quantiles: bias from the replicates, acceleration from a jackknife that
    leaves out one user at a time (user weights: all ones but that user's zero)."""
    normal = NormalDist()
    share = (np.sum(theta < estimate) + 0.5 * np.sum(theta == estimate)) / len(theta)
    share = float(np.clip(share, 0.5 / len(theta), 1.0 - 0.5 / len(theta)))
    z0 = normal.inv_cdf(share)
    n_users = len(terms[0][0].requests)
    jack = []
    for start in range(0, n_users, _REPLICATE_BLOCK):
        block = min(_REPLICATE_BLOCK, n_users - start)
        weights = np.ones((block, n_users))
        weights[np.arange(block), start + np.arange(block)] = 0.0
        jack.append(_combined(terms, weights))
    leave_one_out = np.concatenate(jack)
    spread = leave_one_out.mean() - leave_one_out
    denominator = 6.0 * float(np.sum(spread**2)) ** 1.5
    acceleration = float(np.sum(spread**3)) / denominator if denominator > 0 else 0.0
    adjusted = []
    for tail in (alpha, 1.0 - alpha):
        z = z0 + normal.inv_cdf(tail)
        adjusted.append(normal.cdf(z0 + z / (1.0 - acceleration * z)))
    return adjusted[0], adjusted[1]
