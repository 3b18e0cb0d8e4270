"""The logging policies that serve the synthetic history: what each request showed, and what
the world's users clicked and bought.

`serve_random` knows nothing; `serve_popularity` ranks by the clicks of the days before and
explores as the ranking service does (`recplat.synthetic` module docstring). Clicks are drawn
from the world's cascade.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ranking_features.events import EXPLORATION_POOL_FACTOR
from ranking_training.exploration_schemes import sample_uniform_top_m

from recplat.synthetic.ground_truth import SECONDS_PER_DAY, GroundTruth


@dataclass(frozen=True, eq=False)
class Served:
    """What a logging policy served and the users did: one row per request, k slots each."""

    user: np.ndarray
    shown: np.ndarray  # requests x k, item rows in the order shown
    request_ts: np.ndarray
    clicked: np.ndarray
    converted: np.ndarray
    model_name: str
    # Popularity policy only: explored requests, per-slot propensities, each request's pool.
    explore: np.ndarray | None = None
    propensity: np.ndarray | None = None
    pools: np.ndarray | None = None  # requests x m, item rows in the policy's order


def day_requests(
    truth: GroundTruth, day: int, min_items: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """One day's requests: (users, sorted times, the items available that day), or None when
    the day has none (no request, or too few items)."""
    params, world = truth.params, truth.world
    day_start = params.start.timestamp() + day * SECONDS_PER_DAY
    day_end = day_start + 86_399
    eligible = np.flatnonzero(world.item_arrival_day <= day)
    n_requests = rng.poisson(params.users * params.requests_per_user_per_day)
    if len(eligible) < min_items or n_requests == 0:
        return None
    users = rng.choice(params.users, n_requests, p=world.user_activity)
    times = np.sort(np.floor(rng.uniform(day_start, day_end, n_requests)))
    return users, times, eligible


def serve_random(truth: GroundTruth, rng: np.random.Generator) -> Served:
    """Lists of k items drawn uniformly from those available: a policy that knows nothing."""
    params = truth.params
    list_size = min(params.list_size, params.items)
    users, lists, times = [], [], []
    for day in range(params.days):
        requests = day_requests(truth, day, list_size, rng)
        if requests is None:
            continue
        day_users, day_times, eligible = requests
        users.append(day_users)
        times.append(day_times)
        # Candidates are distinct within a list, as the service's API requires.
        lists.append(np.stack([rng.choice(eligible, list_size, replace=False) for _ in day_users]))
    user, shown = np.concatenate(users), np.concatenate(lists)
    clicked, converted = truth.world.sample_clicks(user, shown, rng)
    return Served(user, shown, np.concatenate(times), clicked, converted, "synthetic-random-policy")


def serve_popularity(truth: GroundTruth, rng: np.random.Generator) -> Served:
    """Each request's candidates ranked by their clicks on the days before, explored as the
    service explores (`recplat.synthetic` module docstring); clicks are drawn day by day, so
    they feed the next day's ranking."""
    params, world = truth.params, truth.world
    k = params.list_size
    clicks_so_far = np.zeros(params.items)
    parts: dict[str, list[np.ndarray]] = {
        name: [] for name in ("user", "shown", "ts", "clicked", "converted", "explore", "p", "pool")
    }
    for day in range(params.days):
        requests = day_requests(truth, day, k, rng)
        if requests is None:
            continue
        users, times, eligible = requests
        count = min(params.candidates, len(eligible))
        picks = np.argpartition(rng.random((len(users), len(eligible))), count - 1, axis=1)
        candidates = eligible[picks[:, :count]]
        # Stable: ties (items nobody clicked yet) keep the candidates' random order.
        order = np.argsort(-clicks_so_far[candidates], axis=1, kind="stable")
        ranked = np.take_along_axis(candidates, order, axis=1)
        m = min(EXPLORATION_POOL_FACTOR * k, count)
        explore = rng.random(len(users)) < params.exploration
        shown = ranked[:, :k].copy()
        propensity = np.ones(shown.shape)
        if explore.any():
            shown[explore], propensity[explore] = sample_uniform_top_m(ranked[explore, :m], k, rng)
        clicked, converted = world.sample_clicks(users, shown, rng)
        np.add.at(clicks_so_far, shown[clicked], 1.0)
        for name, value in (
            ("user", users),
            ("shown", shown),
            ("ts", times),
            ("clicked", clicked),
            ("converted", converted),
            ("explore", explore),
            ("p", propensity),
            # Pools differ in width only when a day has fewer than 2k candidates.
            ("pool", _pad(ranked[:, :m], EXPLORATION_POOL_FACTOR * k)),
        ):
            parts[name].append(value)
    joined = {name: np.concatenate(values) for name, values in parts.items()}
    return Served(
        joined["user"],
        joined["shown"],
        joined["ts"],
        joined["clicked"],
        joined["converted"],
        "synthetic-popularity-policy",
        explore=joined["explore"],
        propensity=joined["p"],
        pools=joined["pool"],
    )


def _pad(rows: np.ndarray, width: int) -> np.ndarray:
    """`rows` widened to `width` columns with -1 (no item)."""
    padded = np.full((len(rows), width), -1, dtype=np.int64)
    padded[:, : rows.shape[1]] = rows
    return padded
