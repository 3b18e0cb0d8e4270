"""A brand lake written by playing a logging policy against `recplat.simulation.truth`.

The counterfactual gate needs what the service logs (exploit and explore impressions with
`policy`, `propensity` and `pool`; docs/architecture.md, "Impressions and exploration") and
feedback that follows a truth the features do not mirror. `WorldLake.play` serves a world's
requests day by day with a given scorer, as the service does: a share `exploration` of
requests shows a uniformly random k-permutation of the scorer's top `pool_factor x k`
(propensity 1/m, the pool logged), the rest the scorer's top k in order (propensity 1). Clicks
and conversions come from the world's cascade; each becomes a feedback event with the
request_id, user_id and item_id of its impression, so the lake's feedback rules match it.
The catalog holds every item of the world, with a category (the item's strongest of the first
`categories` latent factors: a feature that carries some, not all, of the taste) and
`published_at` (its arrival day).

`WorldLake.true_reward` is the truth to check a decision against: the exact expected reward
per request (clicks + w x conversions in the top k, from the cascade's probabilities) of serving
a scorer's top k on the world's requests of some days, no click noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from ranking_features import FeatureSnapshot, build_feature_matrix
from ranking_features.events import (
    CATALOG_PATH,
    CATALOG_SCHEMA,
    EXPLORATION_POOL_FACTOR,
    FEEDBACK_DIR,
    FEEDBACK_SCHEMA,
    IMPRESSION_SCHEMA,
    IMPRESSIONS_DIR,
    POLICY_EXPLOIT,
    POLICY_EXPLORE,
    partition_dir,
)
from ranking_features.lake import open_lake
from ranking_training.counterfactual import sample_uniform_top_m

from recplat.simulation.truth import World

DAY_SECONDS = 86_400


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
    candidates: np.ndarray  # requests x candidates: world item index
    candidate_ids: np.ndarray  # requests x candidates: item id


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
    with the model's own snapshot, no session (the caller sends no recent items)."""

    def scores(batch: RequestBatch) -> np.ndarray:
        n, c = batch.candidate_ids.shape
        features = build_feature_matrix(
            snapshot,
            user_ids=batch.user_ids,
            request_times=batch.times,
            row_request=np.repeat(np.arange(n), c),
            row_items=list(batch.candidate_ids.ravel()),
            recent_items=[()] * n,
        )
        return np.asarray(booster.predict(features), dtype=np.float64).reshape(n, c)

    return scores


@dataclass(frozen=True)
class PlayedDays:
    """What `WorldLake.play` wrote."""

    requests: int
    explore_requests: int
    impressions: int
    clicks: int
    conversions: int


@dataclass(frozen=True, eq=False)
class WorldLake:
    """A world, and how its ids, catalog and traffic look in a lake."""

    world: World
    traffic: TrafficSettings

    def user_id(self, users: np.ndarray) -> list[str]:
        return [f"u{u:05d}" for u in users]

    def item_ids(self) -> np.ndarray:
        return np.array([f"i{i:05d}" for i in range(self.world.params.items)], dtype=object)

    def day_start(self, day: int) -> float:
        start = datetime(self.traffic.start.year, self.traffic.start.month, self.traffic.start.day)
        return (start.replace(tzinfo=UTC) + timedelta(days=day)).timestamp()

    def date_of(self, day: int) -> date:
        return self.traffic.start + timedelta(days=day)

    def categories(self) -> np.ndarray:
        """Each item's category: its strongest of the first `categories` latent factors."""
        factors = self.world.item_factors[:, : self.traffic.categories]
        return np.array([f"c{c}" for c in np.argmax(factors, axis=1)], dtype=object)

    def write_catalog(self, lake_uri: str) -> None:
        """`catalog/items.parquet`: every item, published on its arrival day."""
        published = [self.day_start(int(d)) for d in self.world.item_arrival_day]
        table = pa.table(
            {
                "item_id": self.item_ids(),
                "category": self.categories(),
                "published_at": pa.array(
                    (np.array(published) * 1e6).astype(np.int64), pa.timestamp("us", tz="UTC")
                ),
                "title": [f"item {i}" for i in range(self.world.params.items)],
            },
            schema=CATALOG_SCHEMA,
        )
        _write(lake_uri, CATALOG_PATH, table)

    def requests(self, day: int, n: int, rng: np.random.Generator) -> RequestBatch:
        """`n` requests of `day`: users by activity, candidates a random sample of the items
        available that day (what a client's candidate generation would send)."""
        users = rng.choice(self.world.params.users, n, p=self.world.user_activity)
        available = np.flatnonzero(self.world.available()[day])
        count = min(self.traffic.candidates, len(available))
        picks = np.argpartition(rng.random((n, len(available))), count - 1, axis=1)[:, :count]
        candidates = available[picks]
        # Within the day, early enough that the feedback lands on the same date partition.
        times = self.day_start(day) + np.sort(rng.uniform(0, DAY_SECONDS - 1800, n))
        return RequestBatch(
            day=day,
            times=times,
            users=users,
            user_ids=self.user_id(users),
            candidates=candidates,
            candidate_ids=self.item_ids()[candidates],
        )

    def play(self, scorer: Scorer, days: range, lake_uri: str, seed: int) -> PlayedDays:
        """Serve `days` with `scorer` (exploring as the service does), write the impressions
        and feedback of each day to the lake, and the catalog."""
        self.write_catalog(lake_uri)
        rng = np.random.default_rng(seed)
        totals = np.zeros(5, dtype=np.int64)
        for day in days:
            batch = self.requests(day, self.traffic.requests_per_day, rng)
            ranked = _ranked(batch.candidates, scorer(batch))
            k = self.traffic.k
            m = min(self.traffic.pool_factor * k, ranked.shape[1])
            explore = rng.random(len(ranked)) < self.traffic.exploration
            shown = ranked[:, :k].copy()
            propensity = np.ones(shown.shape)
            if explore.any():
                sampled, p = sample_uniform_top_m(ranked[explore, :m], k, rng)
                shown[explore], propensity[explore] = sampled, p
            clicked, converted = self.world.sample_clicks(batch.users, shown, rng)
            pools = [
                list(self.item_ids()[ranked[r, :m]]) if explore[r] else None
                for r in range(len(ranked))
            ]
            request_ids = [f"{self.traffic.brand}-d{day:03d}-r{r:06d}" for r in range(len(ranked))]
            impressions = self._impressions(batch, request_ids, shown, propensity, explore, pools)
            feedback = self._feedback(batch, request_ids, shown, clicked, converted, rng)
            _write_partitioned(lake_uri, IMPRESSIONS_DIR, impressions, f"day{day:03d}")
            _write_partitioned(lake_uri, FEEDBACK_DIR, feedback, f"day{day:03d}")
            totals += [
                len(ranked),
                int(explore.sum()),
                shown.size,
                int(clicked.sum()),
                int(converted.sum()),
            ]
        return PlayedDays(*(int(t) for t in totals))

    def true_reward(
        self,
        scorer: Scorer,
        days: range,
        requests_per_day: int,
        seed: int,
        conversion_weight: float = 0.0,
    ) -> float:
        """Exact expected reward per request of serving `scorer`'s top k (no exploration) on
        `requests_per_day` fresh requests of each day; same seed, same requests for any scorer."""
        rng = np.random.default_rng(seed)
        rewards = []
        for day in days:
            batch = self.requests(day, requests_per_day, rng)
            shown = _ranked(batch.candidates, scorer(batch))[:, : self.traffic.k]
            rewards.append(self.world.expected_reward(batch.users, shown, conversion_weight))
        return float(np.concatenate(rewards).mean())

    def _impressions(
        self,
        batch: RequestBatch,
        request_ids: list[str],
        shown: np.ndarray,
        propensity: np.ndarray,
        explore: np.ndarray,
        pools: list[list[str] | None],
    ) -> pa.Table:
        n, k = shown.shape
        rows = np.repeat(np.arange(n), k)
        position = np.tile(np.arange(1, k + 1), n)
        request = np.asarray(request_ids, dtype=object)[rows]
        return pa.table(
            {
                "event_id": [f"{r}:{p}" for r, p in zip(request, position, strict=True)],
                "request_id": request,
                "ts": _timestamps(batch.times[rows]),
                "user_id": np.asarray(batch.user_ids, dtype=object)[rows],
                "item_id": self.item_ids()[shown.ravel()],
                "position": position.astype(np.int32),
                "score": pa.nulls(n * k, pa.float64()),
                "model_name": [f"{self.traffic.brand}-ranker"] * (n * k),
                "model_version": pa.nulls(n * k, pa.string()),
                "variant": ["champion"] * (n * k),
                "brand": [self.traffic.brand] * (n * k),
                "policy": np.where(explore[rows], POLICY_EXPLORE, POLICY_EXPLOIT),
                "propensity": propensity.ravel(),
                "pool": pa.array([pools[r] for r in rows], pa.list_(pa.string())),
                "experiment_id": pa.nulls(n * k, pa.string()),
            },
            schema=IMPRESSION_SCHEMA,
        )

    def _feedback(
        self,
        batch: RequestBatch,
        request_ids: list[str],
        shown: np.ndarray,
        clicked: np.ndarray,
        converted: np.ndarray,
        rng: np.random.Generator,
    ) -> pa.Table:
        columns: dict[str, list[Any]] = {
            k: [] for k in ("event_id", "request_id", "ts", "user_id", "item_id", "type")
        }
        for kind, mask, delay in (("click", clicked, 30.0), ("conversion", converted, 600.0)):
            request, position = np.nonzero(mask)
            items = self.item_ids()[shown[request, position]]
            ids = np.asarray(request_ids, dtype=object)[request]
            columns["event_id"] += [f"{r}:{i}:{kind}" for r, i in zip(ids, items, strict=True)]
            columns["request_id"] += list(ids)
            columns["ts"] += list(
                batch.times[request] + delay * (1 + position) + rng.uniform(0, 60, len(request))
            )
            columns["user_id"] += [batch.user_ids[r] for r in request]
            columns["item_id"] += list(items)
            columns["type"] += [kind] * len(request)
        columns["ts"] = _timestamps(np.asarray(columns["ts"], dtype=np.float64))
        return pa.table(
            {**columns, "brand": [self.traffic.brand] * len(columns["type"])},
            schema=FEEDBACK_SCHEMA,
        )


def _ranked(candidates: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Candidates (requests x c) in descending score order (ties by candidate order)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(candidates, order, axis=1)


def _timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array((np.asarray(seconds) * 1e6).astype(np.int64), pa.timestamp("us", tz="UTC"))


def _write(lake_uri: str, path: str, table: pa.Table) -> None:
    fs, root = open_lake(lake_uri)
    target = f"{root}/{path}"
    fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(target, "wb") as handle:
        pq.write_table(table, handle)


def _write_partitioned(lake_uri: str, events_dir: str, table: pa.Table, name: str) -> None:
    """One file per UTC date of the events' `ts` (the lake's partitioning rule)."""
    if table.num_rows == 0:
        return
    seconds = table["ts"].cast(pa.int64()).to_numpy() / 1e6
    days = np.array(
        [datetime.fromtimestamp(s, UTC).date().isoformat() for s in seconds], dtype=object
    )
    for day in np.unique(days):
        _write(
            lake_uri,
            f"{partition_dir(events_dir, day)}/{name}.parquet",
            table.filter(pa.array(days == day)),
        )
