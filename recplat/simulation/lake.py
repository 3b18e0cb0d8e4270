"""A brand lake written by playing a logging policy against `recplat.simulation.truth`.

The counterfactual gate needs what the service logs (exploit and explore impressions with
`policy`, `propensity` and `pool`; docs/architecture.md, "Impressions and exploration") and
feedback that follows a truth the features do not mirror. `WorldLake.play` serves a world's
requests day by day with a given scorer, as the service does: a share `exploration` of
requests shows a uniformly random k-permutation of the scorer's top `pool_factor x k`
(propensity 1/m, the pool logged), the rest the scorer's top k in order (propensity 1). Clicks
and conversions come from the world's cascade; each becomes a feedback event with the
request_id, user_id and item_id of its impression, so the lake's feedback rules match it.

The traffic is what a real client sends and a real service computes from it, so that training
rebuilds exactly the vectors the logging model scored (docs/architecture.md, "Sessions"):
- the client (`ClickHistory`) sends each user's session, the latest `SESSION_LENGTH` clicks
  before the request, newest last. A user's requests of one day are served in rounds (every
  user's first request, then every second one, ...), so a request sees the clicks its user's
  earlier requests drew, as it would online;
- a model scores with its own, frozen snapshot (`model_scorer`), as the service does: the one
  its training run logged, never refreshed;
- ties keep the order the client sent the candidates in (the service's stable sort): the
  served order is deterministic given the request, but only the logged pool records it, since
  training orders a request's rows by item id.
The catalog holds every item of the world, with a category (the item's strongest of the first
`categories` latent factors: a feature that carries some, not all, of the taste) and
`published_at` (its arrival day).

The requests, the client's sessions and the scorers are in `recplat.simulation.traffic`.

`WorldLake.true_rewards` is the truth to check a decision against: the exact expected reward
of each request (clicks + w x conversions in the top k, from the cascade's probabilities) of
serving a scorer's top k on fresh requests of some days, no click noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from ranking_features.events import (
    CATALOG_PATH,
    CATALOG_SCHEMA,
    CLICK,
    CONVERSION,
    FEEDBACK_DIR,
    FEEDBACK_SCHEMA,
    IMPRESSION_SCHEMA,
    IMPRESSIONS_DIR,
    POLICY_EXPLOIT,
    POLICY_EXPLORE,
    partition_dir,
)
from ranking_features.lake import open_lake
from ranking_features.mlflow_names import CHAMPION, registered_model_name
from ranking_training.exploration_schemes import sample_uniform_top_m

from recplat.simulation.traffic import ClickHistory, RequestBatch, Scorer, TrafficSettings
from recplat.simulation.truth import World

DAY_SECONDS = 86_400


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
        """`n` requests of `day` in time order: users by activity, candidates a random sample
        of the items available that day, in the order a client's candidate generation sends
        them (random)."""
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

    def play(
        self,
        scorer: Scorer,
        days: range,
        lake_uri: str,
        seed: int,
        clicks: ClickHistory | None = None,
        model_version: str | None = None,
    ) -> PlayedDays:
        """Serve `days` with `scorer` (exploring as the service does), write the impressions
        (logged as `model_version`) and feedback of each day to the lake, and the catalog.
        `clicks` is the client's record of earlier clicks; it is updated with the new ones."""
        self.write_catalog(lake_uri)
        clicks = ClickHistory() if clicks is None else clicks
        rng = np.random.default_rng(seed)
        totals = np.zeros(5, dtype=np.int64)
        for day in days:
            batch = self.requests(day, self.traffic.requests_per_day, rng)
            served = self._serve_day(batch, scorer, clicks, rng)
            request_ids = [
                f"{self.traffic.brand}-d{day:03d}-r{r:06d}" for r in range(len(batch.times))
            ]
            impressions = self._impressions(batch, request_ids, served, model_version)
            feedback = self._feedback(batch, request_ids, served)
            _write_partitioned(lake_uri, IMPRESSIONS_DIR, impressions, f"day{day:03d}")
            _write_partitioned(lake_uri, FEEDBACK_DIR, feedback, f"day{day:03d}")
            totals += [
                len(batch.times),
                int(served.explore.sum()),
                served.shown.size,
                int(served.clicked.sum()),
                int(served.converted.sum()),
            ]
        return PlayedDays(*(int(t) for t in totals))

    def _serve_day(
        self,
        batch: RequestBatch,
        scorer: Scorer,
        clicks: ClickHistory,
        rng: np.random.Generator,
    ) -> _ServedDay:
        """A day's requests served in rounds: round j holds every user's (j+1)-th request, so
        each request's session has the clicks of its user's earlier requests before it."""
        n, k = len(batch.times), self.traffic.k
        m = min(self.traffic.pool_factor * k, batch.candidates.shape[1])
        day = _ServedDay.empty(n, k)
        _, inverse = np.unique(batch.users, return_inverse=True)
        # Requests are in time order, so a request's round is how many of its user's came before.
        by_user = np.argsort(inverse, kind="stable")
        starts = np.r_[0, np.flatnonzero(np.diff(inverse[by_user])) + 1]
        rounds = np.empty(n, dtype=np.int64)
        rounds[by_user] = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
        for round_ in range(int(rounds.max()) + 1 if n else 0):
            rows = np.flatnonzero(rounds == round_)
            sub = batch.take(rows, clicks.sessions(batch.users[rows], batch.times[rows]))
            ranked = _ranked(sub.candidates, scorer(sub))
            explore = rng.random(len(rows)) < self.traffic.exploration
            shown = ranked[:, :k].copy()
            propensity = np.ones(shown.shape)
            if explore.any():
                shown[explore], propensity[explore] = sample_uniform_top_m(
                    ranked[explore, :m], k, rng
                )
            clicked, converted = self.world.sample_clicks(sub.users, shown, rng)
            # Feedback arrives in scan order, the click before its conversion.
            click_ts = (
                sub.times[:, None] + 30.0 * np.arange(1, k + 1) + rng.uniform(0, 20, (len(rows), k))
            )
            day.shown[rows], day.propensity[rows], day.explore[rows] = shown, propensity, explore
            day.clicked[rows], day.converted[rows] = clicked, converted
            day.click_ts[rows] = click_ts
            for r, row in enumerate(rows):
                day.pools[row] = list(self.item_ids()[ranked[r, :m]]) if explore[r] else None
            request, position = np.nonzero(clicked)
            clicks.record(
                sub.users[request],
                click_ts[request, position],
                self.item_ids()[shown[request, position]],
            )
        return day

    def true_rewards(
        self,
        scorer: Scorer,
        days: range,
        requests_per_day: int,
        seed: int,
        conversion_weight: float = 0.0,
        clicks: ClickHistory | None = None,
    ) -> np.ndarray:
        """Exact expected reward of each of `requests_per_day` fresh requests of each day when
        served `scorer`'s top k (no exploration); same seed, same requests for any scorer, so
        two scorers' rewards pair up. Sessions come from `clicks` (the client's record)."""
        rng = np.random.default_rng(seed)
        rewards = []
        for day in days:
            batch = self.requests(day, requests_per_day, rng)
            if clicks is not None:
                batch = batch.take(
                    np.arange(len(batch.times)), clicks.sessions(batch.users, batch.times)
                )
            shown = _ranked(batch.candidates, scorer(batch))[:, : self.traffic.k]
            rewards.append(self.world.expected_reward(batch.users, shown, conversion_weight))
        return np.concatenate(rewards)

    def _impressions(
        self,
        batch: RequestBatch,
        request_ids: list[str],
        served: _ServedDay,
        model_version: str | None,
    ) -> pa.Table:
        n, k = served.shown.shape
        rows = np.repeat(np.arange(n), k)
        position = np.tile(np.arange(1, k + 1), n)
        request = np.asarray(request_ids, dtype=object)[rows]
        return pa.table(
            {
                "event_id": [f"{r}:{p}" for r, p in zip(request, position, strict=True)],
                "request_id": request,
                "ts": _timestamps(batch.times[rows]),
                "user_id": np.asarray(batch.user_ids, dtype=object)[rows],
                "item_id": self.item_ids()[served.shown.ravel()],
                "position": position.astype(np.int32),
                "score": pa.nulls(n * k, pa.float64()),
                "model_name": [registered_model_name(self.traffic.brand)] * (n * k),
                "model_version": pa.array([model_version] * (n * k), pa.string()),
                "variant": [CHAMPION] * (n * k),
                "brand": [self.traffic.brand] * (n * k),
                "policy": np.where(served.explore[rows], POLICY_EXPLORE, POLICY_EXPLOIT),
                "propensity": served.propensity.ravel(),
                "pool": pa.array([served.pools[r] for r in rows], pa.list_(pa.string())),
                "experiment_id": pa.nulls(n * k, pa.string()),
            },
            schema=IMPRESSION_SCHEMA,
        )

    def _feedback(
        self, batch: RequestBatch, request_ids: list[str], served: _ServedDay
    ) -> pa.Table:
        columns: dict[str, list[Any]] = {
            k: [] for k in ("event_id", "request_id", "ts", "user_id", "item_id", "type")
        }
        for kind, mask, delay in (
            (CLICK, served.clicked, 0.0),
            (CONVERSION, served.converted, 600.0),
        ):
            request, position = np.nonzero(mask)
            items = self.item_ids()[served.shown[request, position]]
            ids = np.asarray(request_ids, dtype=object)[request]
            columns["event_id"] += [f"{r}:{i}:{kind}" for r, i in zip(ids, items, strict=True)]
            columns["request_id"] += list(ids)
            columns["ts"] += list(served.click_ts[request, position] + delay)
            columns["user_id"] += [batch.user_ids[r] for r in request]
            columns["item_id"] += list(items)
            columns["type"] += [kind] * len(request)
        columns["ts"] = _timestamps(np.asarray(columns["ts"], dtype=np.float64))
        return pa.table(
            {**columns, "brand": [self.traffic.brand] * len(columns["type"])},
            schema=FEEDBACK_SCHEMA,
        )


@dataclass(frozen=True, eq=False)
class _ServedDay:
    """What one day's requests were shown and did (requests x k), filled round by round."""

    shown: np.ndarray
    propensity: np.ndarray
    explore: np.ndarray  # requests
    pools: list[list[str] | None]
    clicked: np.ndarray
    converted: np.ndarray
    click_ts: np.ndarray  # when each position would be clicked (epoch seconds)

    @classmethod
    def empty(cls, n: int, k: int) -> _ServedDay:
        return cls(
            shown=np.zeros((n, k), dtype=np.int64),
            propensity=np.ones((n, k)),
            explore=np.zeros(n, dtype=bool),
            pools=[None] * n,
            clicked=np.zeros((n, k), dtype=bool),
            converted=np.zeros((n, k), dtype=bool),
            click_ts=np.zeros((n, k)),
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
