"""A simulated world whose clicks the ranking features do not mirror, with its exact truth.

`recplat.synthetic` decides clicks with a logistic function of exactly what the features
approximate, behind LightGBM's own position curve, so "the model beats popularity" there says
little (issue 14). This world is built differently on purpose:

- Attraction is latent: ``a(u, i) = sigmoid(bias + <user_factors[u], item_factors[i]> +
  quality[i])``. No feature sees the factors; popularity only sees their average.
- Clicks follow a cascade, not a position curve: the user scans top-down; at each examined
  position clicks with probability a(u, i); after a click stops with probability
  `stop_after_click`, after a skip goes on with probability `patience`. Whether position p is
  examined depends on the items above it. With ``stop_after_click == 1 - patience`` it reduces
  to a position-based model with examination ``patience ** (p - 1)``: the control in which
  item-position IPS is unbiased.
- Items arrive over days: a share is there on day 0, the rest appear on later days.
- A click converts with probability ``sigmoid(conversion_bias + value[i])``; value is
  independent of attraction, so clicks and conversions rank items differently.
- A request is a (user, day): users are drawn by a log-normal activity (some users make many
  requests, so estimates must be clustered by user), days uniformly; the candidates are every
  item available that day.

Truth is exact, not Monte Carlo: `true_ctr` sums the cascade's click probabilities over the
finite (day, user) grid weighted by the request distribution. A ranking policy is its top
items for every (day, user): ``rankings(scores, depth)`` (days x users x depth). Exploration
logs use the scheme of `ranking_training.counterfactual` (uniform k-permutation of the logging
top m) and come back as its `ExplorationLog`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ranking_training.exploration_log import ExplorationLog
from ranking_training.exploration_schemes import sample_uniform_top_m


@dataclass(frozen=True)
class WorldParams:
    """Everything a world is a deterministic function of."""

    users: int = 3000
    items: int = 800
    days: int = 14
    seed: int = 0
    factors: int = 8
    attraction_bias: float = -4.0
    # Standard deviation of the user-item factor dot product, and of item quality (logit units).
    taste_scale: float = 1.0
    quality_scale: float = 0.7
    initial_item_share: float = 0.6
    stop_after_click: float = 0.5
    patience: float = 0.9
    conversion_bias: float = -1.5
    activity_sigma: float = 1.0


@dataclass(frozen=True, eq=False)
class SimulatedExploration:
    """An exploration log from the world, with what the estimators' callers need to score it."""

    log: ExplorationLog
    request_user: np.ndarray  # requests
    request_day: np.ndarray  # requests
    shown: np.ndarray  # requests x k, item indices in the order shown

    def target_positions(self, rankings: np.ndarray) -> np.ndarray:
        """Per log row, the 1-based position the target (rankings: days x users x >= k) gives
        the logged item in its top k, or 0 where it is outside the target's top k."""
        k = self.shown.shape[1]
        target = rankings[self.request_day, self.request_user, :k][self.log.request]
        match = target == self.log.item[:, None]
        return np.where(match.any(axis=1), match.argmax(axis=1) + 1, 0)


@dataclass(frozen=True, eq=False)
class ServedTraffic:
    """Requests served a deterministic ranking, and the clicks they drew (for biased metrics)."""

    users: np.ndarray
    days: np.ndarray
    shown: np.ndarray  # requests x k
    clicked: np.ndarray  # requests x k, bool
    converted: np.ndarray  # requests x k, bool


@dataclass(frozen=True, eq=False)
class World:
    """The hidden truth. Build it with `World.build`."""

    params: WorldParams
    user_factors: np.ndarray  # users x factors
    item_factors: np.ndarray  # items x factors
    item_quality: np.ndarray  # items
    item_value: np.ndarray  # items: conversion propensity after a click
    item_arrival_day: np.ndarray  # items: first day the item can be shown
    user_activity: np.ndarray  # users: P(a request comes from this user), sums to 1

    @classmethod
    def build(cls, params: WorldParams) -> World:
        if not 0 < params.patience <= 1 or not 0 <= params.stop_after_click <= 1:
            raise ValueError(
                f"world: patience in (0, 1] and stop_after_click in [0, 1] expected, got "
                f"{params.patience} and {params.stop_after_click}"
            )
        rng = np.random.default_rng(params.seed)
        # Entry scale so the dot product of two factor vectors has sd taste_scale.
        scale = np.sqrt(params.taste_scale) / params.factors**0.25
        arrival = rng.integers(1, max(params.days, 2), params.items)
        arrival[rng.random(params.items) < params.initial_item_share] = 0
        activity = rng.lognormal(0.0, params.activity_sigma, params.users)
        return cls(
            params=params,
            user_factors=rng.normal(0.0, scale, (params.users, params.factors)),
            item_factors=rng.normal(0.0, scale, (params.items, params.factors)),
            item_quality=rng.normal(0.0, params.quality_scale, params.items),
            item_value=rng.normal(0.0, 1.0, params.items),
            item_arrival_day=arrival,
            user_activity=activity / activity.sum(),
        )

    def attraction_logit(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Logit of P(click | examined), elementwise over broadcast `users` and `items`."""
        taste = np.einsum("...f,...f->...", self.user_factors[users], self.item_factors[items])
        return self.params.attraction_bias + taste + self.item_quality[items]

    def attraction(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return _sigmoid(self.attraction_logit(users, items))

    def conversion_probability(self, items: np.ndarray) -> np.ndarray:
        """P(conversion | click) per item."""
        return _sigmoid(self.params.conversion_bias + self.item_value[items])

    def available(self) -> np.ndarray:
        """days x items: whether each item can be shown on each day."""
        return np.arange(self.params.days)[:, None] >= self.item_arrival_day[None, :]

    # Policies: score matrices (users x items) of models with a known quality.
    def true_scores(self) -> np.ndarray:
        """The oracle's scores: the attraction logit of every (user, item)."""
        users = np.arange(self.params.users)[:, None]
        return self.attraction_logit(users, np.arange(self.params.items)[None, :])

    def noisy_scores(self, noise: float, seed: int) -> np.ndarray:
        """A model with known quality: the oracle plus Gaussian noise of sd `noise` (logits)."""
        rng = np.random.default_rng(seed)
        truth = self.true_scores()
        return truth + rng.normal(0.0, noise, truth.shape)

    def popularity_scores(self) -> np.ndarray:
        """The popularity baseline: each item's mean attraction over users, the same for all."""
        mean = self.attraction(
            np.arange(self.params.users)[:, None], np.arange(self.params.items)[None, :]
        ).mean(axis=0)
        return np.broadcast_to(mean, (self.params.users, self.params.items))

    def rankings(self, scores: np.ndarray, depth: int) -> np.ndarray:
        """A policy's top `depth` items for every (day, user): days x users x depth."""
        available = self.available()
        if available[0].sum() < depth:
            raise ValueError(
                f"world: depth {depth} exceeds the {int(available[0].sum())} items of day 0"
            )
        out = np.empty((self.params.days, self.params.users, depth), dtype=np.int64)
        for day in range(self.params.days):
            masked = np.where(available[day], scores, -np.inf)
            top = np.argpartition(-masked, depth - 1, axis=1)[:, :depth]
            order = np.argsort(-np.take_along_axis(masked, top, axis=1), axis=1, kind="stable")
            out[day] = np.take_along_axis(top, order, axis=1)
        return out

    def rerank(self, scores: np.ndarray, within: np.ndarray, k: int) -> np.ndarray:
        """The top k by `scores` of the items in `within` (days x users x m), e.g. a new model
        that re-ranks the champion's top m, which keeps it in the exploration's support."""
        users = np.arange(self.params.users)[None, :, None]
        order = np.argsort(-scores[users, within], axis=2, kind="stable")[:, :, :k]
        return np.take_along_axis(within, order, axis=2)

    def click_probabilities(self, users: np.ndarray, shown: np.ndarray) -> np.ndarray:
        """Exact P(click at each position), requests x k, for items `shown` to `users`."""
        attraction = self.attraction(users[:, None], shown)
        stop, patience = self.params.stop_after_click, self.params.patience
        goes_on = attraction * (1.0 - stop) + (1.0 - attraction) * patience
        examined = np.cumprod(np.c_[np.ones(len(users)), goes_on[:, :-1]], axis=1)
        return examined * attraction

    def expected_reward(
        self, users: np.ndarray, shown: np.ndarray, conversion_weight: float = 0.0
    ) -> np.ndarray:
        """Exact expected clicks + conversion_weight * conversions per request."""
        clicks = self.click_probabilities(users, shown)
        per_click = 1.0 + conversion_weight * self.conversion_probability(shown)
        return (clicks * per_click).sum(axis=1)

    def true_ctr(self, rankings: np.ndarray, k: int, conversion_weight: float = 0.0) -> float:
        """Exact expected reward (clicks, by default) per request in the top k of a policy given
        by its `rankings` (days x users x >= k), under the world's request distribution."""
        days, users = self.params.days, self.params.users
        grid_users = np.tile(np.arange(users), days)
        reward = self.expected_reward(
            grid_users, rankings[:, :, :k].reshape(-1, k), conversion_weight
        )
        return float(reward.reshape(days, users).mean(axis=0) @ self.user_activity)

    def sample_requests(
        self, n_requests: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """(users, days) of `n_requests` requests from the request distribution."""
        users = rng.choice(self.params.users, n_requests, p=self.user_activity)
        return users, rng.integers(0, self.params.days, n_requests)

    def sample_clicks(
        self, users: np.ndarray, shown: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Clicks and conversions (requests x k, bool) of `users` scanning `shown` top-down."""
        n, k = shown.shape
        attraction = self.attraction(users[:, None], shown)
        draws = rng.random((4, n, k))
        clicked = np.zeros((n, k), dtype=bool)
        scanning = np.ones(n, dtype=bool)
        for position in range(k):
            click = scanning & (draws[0, :, position] < attraction[:, position])
            clicked[:, position] = click
            stays = np.where(
                click,
                draws[1, :, position] >= self.params.stop_after_click,
                draws[2, :, position] < self.params.patience,
            )
            scanning &= stays
        converted = clicked & (draws[3] < self.conversion_probability(shown))
        return clicked, converted

    def serve(self, rankings: np.ndarray, n_requests: int, k: int, seed: int) -> ServedTraffic:
        """Requests served a policy's top k in its own order (no exploration)."""
        rng = np.random.default_rng(seed)
        users, days = self.sample_requests(n_requests, rng)
        shown = rankings[days, users, :k]
        clicked, converted = self.sample_clicks(users, shown, rng)
        return ServedTraffic(users, days, shown, clicked, converted)

    def exploration_log(
        self, logging: np.ndarray, n_requests: int, k: int, m: int, seed: int
    ) -> SimulatedExploration:
        """`n_requests` exploration requests, each shown a uniformly random k-permutation of
        the logging policy's top m, with exact propensities (1/m). `logging` is the policy's
        scores (users x items) or its `rankings` (days x users x depth >= m)."""
        top = logging if logging.ndim == 3 else self.rankings(logging, m)
        rng = np.random.default_rng(seed)
        users, days = self.sample_requests(n_requests, rng)
        shown, propensity = sample_uniform_top_m(top[days, users, :m], k, rng)
        clicked, converted = self.sample_clicks(users, shown, rng)
        log = ExplorationLog(
            request=np.repeat(np.arange(n_requests), k),
            user=np.repeat(users, k),
            item=shown.ravel(),
            position=np.tile(np.arange(1, k + 1), n_requests),
            propensity=propensity.ravel(),
            clicked=clicked.ravel().astype(np.float64),
            converted=converted.ravel().astype(np.float64),
            n_requests=n_requests,
            n_users=self.params.users,
        )
        return SimulatedExploration(log, users, days, shown)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
