"""Synthetic lake history from a brand's hidden simulated world, and that world on the calendar.

The hidden truth (`GroundTruth`) is a `recplat.simulation.truth.World`: latent user and item
factors, cascade clicks (not a position curve), items arriving over days, conversions. It is
what a real brand never sees, and the features do not mirror it:

- each item's catalog category is `recplat.simulation.lake.WorldLake.categories` (its strongest
  of the first few latent factors), so category affinity and the session's categories see part
  of a user's taste, never the factors themselves; popularity sees the items' average
  attraction;
- items there from day 0 were published over the month before; the others are published at
  the start of the day they arrive. Attraction does not fade with age, so freshness is a
  feature the model may find useless.

Day 0 is the history's first day. The world runs `DAYS_AFTER_HISTORY` day past the history,
the day after it: a history that ends yesterday (`recplat data synth`'s default) leaves
today's arriving items new to every model.

`generate` plays a logging policy against the world for `params.days` days and writes
impressions, click and conversion feedback and catalog in the lake layout
(docs/architecture.md, "Contracts"). It
reports the oracle NDCG@10: ranking the logged lists by the true attraction, scored on the
logged labels. Two logging policies (`LoggingPolicy`):

- `popularity` logs as the ranking service does (docs/architecture.md, "Impressions and
  exploration"): each request sends `candidates` available items, which the policy ranks by
  their clicks on the days before (the brand's previous system, before any model); a share
  `exploration` of requests shows a uniformly random k-permutation of its top m = min(2k, n)
  with propensity 1/m and the pool logged, the rest its top k in order (propensity 1). This
  is the history the counterfactual gate can judge on, and the one the local platform writes.
- `random` shows k random available items: no service logged it, so its rows carry no
  `policy`, `propensity` or `pool` and the gate finds no exploration in it. A quick fixture
  for tests of the plumbing.

`GroundTruth` rebuilds deterministically from its parameters, which are saved as
`synthetic/groundtruth.json` in the lake, so the local traffic simulator
(`recplat.local.simulator`) decides clicks for the rankings it is served by the same world the
history came from. Training never reads that file.
"""

from __future__ import annotations

import json
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
from ranking_features.events import (
    CLICK,
    CONVERSION,
    EXPLORATION_POOL_FACTOR,
    POLICY_EXPLOIT,
    POLICY_EXPLORE,
)
from ranking_training.counterfactual import sample_uniform_top_m

from recplat.simulation.lake import TrafficSettings, WorldLake
from recplat.simulation.truth import World, WorldParams

if TYPE_CHECKING:
    import pyarrow as pa

# Items there from day 0 were published over this many days before the history starts.
CATALOG_HISTORY_DAYS = 30
# The world runs this many days past the history: the demo's day, with items nobody has seen.
DAYS_AFTER_HISTORY = 1
# The shape of a brand's world. With a random list of 10 users click 0.7 times per request;
# ranking 10 of 30 candidates by popularity earns 1.1 clicks, by the true attraction 1.5: room
# for a model that learns the users' tastes.
WORLD_SHAPE: dict[str, Any] = {"attraction_bias": -3.0, "taste_scale": 2.0, "quality_scale": 0.7}
# Seconds a user spends on an item before the next click, on average (cascade: in order).
CLICK_DELAY_S = 20.0
CONVERSION_DELAY_S = 120.0
GROUNDTRUTH_PATH = "synthetic/groundtruth.json"
GROUNDTRUTH_FORMAT_VERSION = 2
SECONDS_PER_DAY = 86_400


class LoggingPolicy(StrEnum):
    """Who served the synthetic history (module docstring)."""

    POPULARITY = "popularity"
    RANDOM = "random"


@dataclass(frozen=True)
class SynthParams:
    """Everything the synthetic history is a deterministic function of."""

    brand: str
    users: int
    items: int
    days: int
    seed: int = 7
    # Last day of data (UTC date, ISO); defaults to yesterday at generation time.
    end_date: str = ""
    requests_per_user_per_day: float = 0.5
    list_size: int = 10
    logging_policy: str = LoggingPolicy.RANDOM.value
    # Popularity policy: candidates per request, and the share of requests explored.
    candidates: int = 30
    exploration: float = 0.0

    @property
    def start(self) -> datetime:
        end = datetime.fromisoformat(self.end_date).replace(tzinfo=UTC)
        return end - timedelta(days=self.days - 1)

    def check(self) -> None:
        """Refuse settings no service would log, naming the field."""
        policies = [p.value for p in LoggingPolicy]
        if self.logging_policy not in policies:
            raise ValueError(
                f"logging_policy: expected one of {policies}, got {self.logging_policy!r}"
            )
        if not 0 <= self.exploration <= 1:
            raise ValueError(f"exploration: expected a share in [0, 1], got {self.exploration}")
        if self.logging_policy == LoggingPolicy.POPULARITY and self.candidates < self.list_size:
            raise ValueError(
                f"candidates: expected >= list_size ({self.list_size}), got {self.candidates}"
            )

    def world_params(self) -> WorldParams:
        """The brand's world: its users and items, the history's days and the day after."""
        return WorldParams(
            users=self.users,
            items=self.items,
            days=self.days + DAYS_AFTER_HISTORY,
            seed=self.seed,
            **WORLD_SHAPE,
        )


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """A brand's hidden world on the calendar, with the catalog the features see of it.
    Build it with `GroundTruth.from_params`; users are `u000000..`, items `i000000..`."""

    params: SynthParams
    world: World = field(repr=False)
    item_category: np.ndarray = field(repr=False)  # category names
    item_published_at: np.ndarray = field(repr=False)  # epoch seconds

    @classmethod
    def from_params(cls, params: SynthParams, world: WorldParams | None = None) -> GroundTruth:
        built = World.build(world or params.world_params())
        # A stream of its own: the world's draws stay those of `World.build`.
        rng = np.random.default_rng([params.seed, 1])
        start = params.start.timestamp()
        before = np.floor(
            rng.uniform(start - CATALOG_HISTORY_DAYS * SECONDS_PER_DAY, start, params.items)
        )
        arrival = built.item_arrival_day
        return cls(
            params=params,
            world=built,
            item_category=WorldLake(built, TrafficSettings(brand=params.brand)).categories(),
            item_published_at=np.where(
                arrival == 0, before, start + arrival * float(SECONDS_PER_DAY)
            ),
        )

    def item_ids(self) -> list[str]:
        return [f"i{i:06d}" for i in range(self.params.items)]

    def user_id(self, row: int) -> str:
        return f"u{row:06d}"

    def available(self, now: float) -> np.ndarray:
        """Rows of the items published by `now` (epoch seconds)."""
        return np.flatnonzero(self.item_published_at <= now)

    def user_rows(self, user_ids: list[str]) -> np.ndarray:
        """Row per user; a user outside the world acts like one of its users, fixed by the id."""
        rows = np.empty(len(user_ids), dtype=np.int64)
        for i, user_id in enumerate(user_ids):
            index = _id_number(user_id, "u")
            if index is None or index >= self.params.users:
                index = zlib.crc32(user_id.encode()) % self.params.users
            rows[i] = index
        return rows

    def item_rows(self, item_ids: list[str]) -> np.ndarray:
        """Row per item, -1 for ids the world does not have."""
        return np.array([_item_row(i, self.params.items) for i in item_ids], dtype=np.int64)

    def _relevance(self, users: np.ndarray, items: np.ndarray, now: float) -> np.ndarray:
        """P(click | examined) per (user row, item row): the attraction an oracle ranks by.
        Items not published by `now`, or unknown (-1), are never clicked."""
        known = (items >= 0) & (self.item_published_at[np.maximum(items, 0)] <= now)
        attraction = self.world.attraction(users, np.maximum(items, 0))
        return np.where(known, attraction, 0.0)

    def click_probability(self, user_id: str, item_id: str, position: int, now: float) -> float:
        """P(click) on `item_id` shown at 1-based `position` to `user_id` at `now`, when the user
        examined and skipped every item above it (the cascade's `patience` per skip)."""
        users, items = self.user_rows([user_id]), self.item_rows([item_id])
        attraction = self._relevance(users, items, now)[0]
        return float(attraction * self.world.params.patience ** (position - 1))

    def to_json(self) -> str:
        return json.dumps(
            {
                "format_version": GROUNDTRUTH_FORMAT_VERSION,
                "synth": asdict(self.params),
                "world": asdict(self.world.params),
            }
        )

    @classmethod
    def from_json(cls, text: str, source: str = GROUNDTRUTH_PATH) -> GroundTruth:
        data = json.loads(text)
        version = data.get("format_version")
        if version != GROUNDTRUTH_FORMAT_VERSION:
            raise ValueError(
                f"{source}: format_version: expected {GROUNDTRUTH_FORMAT_VERSION}, got {version}; "
                "the lake was written by an older recplat whose world this one does not rebuild. "
                "Write a fresh lake (`recplat local demo` without --keep-data, or `recplat data "
                "synth`)"
            )
        return cls.from_params(SynthParams(**data["synth"]), WorldParams(**data["world"]))

    @classmethod
    def load(cls, lake_uri: str) -> GroundTruth:
        """Rebuild the world of a synthetic lake from its `synthetic/groundtruth.json`."""
        from ranking_features.lake import open_lake

        fs, root = open_lake(lake_uri)
        with fs.open(f"{root}/{GROUNDTRUTH_PATH}", "r") as handle:
            return cls.from_json(handle.read(), f"{lake_uri}/{GROUNDTRUTH_PATH}")


@dataclass
class SyntheticData:
    """Generated tables (pyarrow) and the oracle's quality on them."""

    impressions: pa.Table
    feedback: pa.Table
    catalog: pa.Table
    oracle: dict[str, float]
    truth: GroundTruth


@dataclass(frozen=True, eq=False)
class _Served:
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


def generate(params: SynthParams) -> SyntheticData:
    """Play `params.logging_policy` against the world for `params.days` days."""
    params.check()
    truth = GroundTruth.from_params(params)
    world = truth.world
    rng = np.random.default_rng([params.seed, 2])
    if params.logging_policy == LoggingPolicy.POPULARITY:
        served = _serve_popularity(truth, rng)
    else:
        served = _serve_random(truth, rng)
    user, shown, request_ts = served.user, served.shown, served.request_ts
    clicked, converted = served.clicked, served.converted
    # A cascade scans top-down, so a list's clicks come in position order.
    click_ts = request_ts[:, None] + np.cumsum(
        np.floor(1.0 + rng.exponential(CLICK_DELAY_S, shown.shape)), axis=1
    )
    conversion_ts = click_ts + np.floor(1.0 + rng.exponential(CONVERSION_DELAY_S, shown.shape))

    request_ids = [uuid.UUID(int=int(key)).hex for key in rng.integers(0, 2**63, len(user))]
    tables = _tables(truth, request_ids, served)
    feedback = _feedback(
        truth,
        request_ids,
        user,
        shown,
        [(CLICK, clicked, click_ts), (CONVERSION, converted, conversion_ts)],
    )
    from ranking_training.metrics import ranking_metrics

    labels = np.where(converted, 2.0, np.where(clicked, 1.0, 0.0))
    oracle = ranking_metrics(
        labels.ravel(),
        world.attraction_logit(user[:, None], shown).ravel(),
        np.full(len(user), shown.shape[1]),
    )
    return SyntheticData(tables[0], feedback, tables[1], oracle, truth)


def _day_requests(
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


def _serve_random(truth: GroundTruth, rng: np.random.Generator) -> _Served:
    """Lists of k items drawn uniformly from those available: a policy that knows nothing."""
    params = truth.params
    list_size = min(params.list_size, params.items)
    users, lists, times = [], [], []
    for day in range(params.days):
        requests = _day_requests(truth, day, list_size, rng)
        if requests is None:
            continue
        day_users, day_times, eligible = requests
        users.append(day_users)
        times.append(day_times)
        # Candidates are distinct within a list, as the service's API requires.
        lists.append(np.stack([rng.choice(eligible, list_size, replace=False) for _ in day_users]))
    user, shown = np.concatenate(users), np.concatenate(lists)
    clicked, converted = truth.world.sample_clicks(user, shown, rng)
    return _Served(
        user, shown, np.concatenate(times), clicked, converted, "synthetic-random-policy"
    )


def _serve_popularity(truth: GroundTruth, rng: np.random.Generator) -> _Served:
    """Each request's candidates ranked by their clicks on the days before, explored as the
    service explores (module docstring); clicks are drawn day by day, so they feed the next
    day's ranking."""
    params, world = truth.params, truth.world
    k = params.list_size
    clicks_so_far = np.zeros(params.items)
    parts: dict[str, list[np.ndarray]] = {
        name: [] for name in ("user", "shown", "ts", "clicked", "converted", "explore", "p", "pool")
    }
    for day in range(params.days):
        requests = _day_requests(truth, day, k, rng)
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
    return _Served(
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


def _tables(
    truth: GroundTruth, request_ids: list[str], served: _Served
) -> tuple[pa.Table, pa.Table]:
    """The impressions (one row per shown item, with the service's exploration fields when a
    policy that explores served them) and the catalog."""
    import pyarrow as pa
    from ranking_features.events import CATALOG_SCHEMA, IMPRESSION_SCHEMA

    params = truth.params
    item_ids = np.array(truth.item_ids(), dtype=object)
    user, shown = served.user, served.shown
    n_requests, list_size = shown.shape
    n_rows = shown.size
    request_id = np.repeat(np.array(request_ids, dtype=object), list_size)
    position = np.tile(np.arange(1, list_size + 1), n_requests)
    policy: Any = pa.nulls(n_rows)
    propensity: Any = pa.nulls(n_rows)
    pool: Any = pa.nulls(n_rows)
    if served.explore is not None and served.propensity is not None and served.pools is not None:
        explore = np.repeat(served.explore, list_size)
        policy = np.where(explore, POLICY_EXPLORE, POLICY_EXPLOIT)
        propensity = served.propensity.ravel()
        pools = [
            list(item_ids[row[row >= 0]]) if explored else None
            for row, explored in zip(served.pools, served.explore, strict=True)
        ]
        pool = pa.array([pools[r] for r in np.repeat(np.arange(n_requests), list_size)])
    impressions = pa.table(
        {
            "event_id": [f"{r}-{p}" for r, p in zip(request_id, position, strict=True)],
            "request_id": request_id,
            "ts": _timestamps(np.repeat(served.request_ts, list_size)),
            "user_id": [truth.user_id(u) for u in np.repeat(user, list_size)],
            "item_id": item_ids[shown.ravel()],
            "position": position.astype(np.int32),
            "score": np.zeros(n_rows),
            "model_name": np.full(n_rows, served.model_name),
            "model_version": np.full(n_rows, "0"),
            "variant": np.full(n_rows, "champion"),
            "brand": np.full(n_rows, params.brand),
            "policy": policy,
            "propensity": propensity,
            "pool": pool,
            "experiment_id": pa.nulls(n_rows),
        },
        schema=IMPRESSION_SCHEMA,
    )
    catalog = pa.table(
        {
            "item_id": item_ids,
            "category": truth.item_category,
            "published_at": _timestamps(truth.item_published_at),
            "title": [f"Item {i}" for i in range(params.items)],
        },
        schema=CATALOG_SCHEMA,
    )
    return impressions, catalog


def _feedback(
    truth: GroundTruth,
    request_ids: list[str],
    user: np.ndarray,
    shown: np.ndarray,
    parts: list[tuple[str, np.ndarray, np.ndarray]],
) -> pa.Table:
    """Feedback rows (kind, requests x k mask, requests x k times), in time order."""
    import pyarrow as pa
    from ranking_features.events import FEEDBACK_SCHEMA

    item_ids = np.array(truth.item_ids(), dtype=object)
    columns: dict[str, list[Any]] = {name: [] for name in ("event_id", "request_id", "ts")}
    columns.update(user_id=[], item_id=[], type=[])
    for kind, mask, event_ts in parts:
        request, slot = np.nonzero(mask)
        columns["event_id"] += [
            f"{request_ids[r]}-{s + 1}-{kind}" for r, s in zip(request, slot, strict=True)
        ]
        columns["request_id"] += [request_ids[r] for r in request]
        columns["ts"] += event_ts[request, slot].tolist()
        columns["user_id"] += [truth.user_id(u) for u in user[request]]
        columns["item_id"] += item_ids[shown[request, slot]].tolist()
        columns["type"] += [kind] * len(request)
    by_time = np.argsort(np.array(columns["ts"], dtype=np.float64), kind="stable")
    rows = {
        name: np.array(values, dtype=np.float64 if name == "ts" else object)[by_time]
        for name, values in columns.items()
    }
    return (
        pa.table(
            {
                **{name: values for name, values in rows.items() if name != "ts"},
                "ts": _timestamps(rows["ts"]),
                "brand": np.full(len(by_time), truth.params.brand, dtype=object),
            }
        )
        .select(FEEDBACK_SCHEMA.names)
        .cast(FEEDBACK_SCHEMA)
    )


def write_lake(data: SyntheticData, lake_uri: str) -> None:
    """Write the generated tables in the lake layout, one parquet file per day and table."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from ranking_features.events import CATALOG_PATH, FEEDBACK_DIR, IMPRESSIONS_DIR, partition_dir
    from ranking_features.lake import open_lake

    fs, root = open_lake(lake_uri)
    for events_dir, table in ((IMPRESSIONS_DIR, data.impressions), (FEEDBACK_DIR, data.feedback)):
        days = pc.strftime(table["ts"], format="%Y-%m-%d")
        for day in sorted(set(days.to_pylist())):
            folder = f"{root}/{partition_dir(events_dir, day)}"
            fs.makedirs(folder, exist_ok=True)
            part = table.filter(pc.equal(days, day))
            with fs.open(f"{folder}/synthetic-{data.truth.params.seed}.parquet", "wb") as handle:
                pq.write_table(part, handle)
    fs.makedirs(f"{root}/catalog", exist_ok=True)
    with fs.open(f"{root}/{CATALOG_PATH}", "wb") as handle:
        pq.write_table(data.catalog, handle)
    fs.makedirs(f"{root}/synthetic", exist_ok=True)
    with fs.open(f"{root}/{GROUNDTRUTH_PATH}", "w") as handle:
        handle.write(data.truth.to_json())


def default_end_date() -> str:
    return (datetime.now(UTC).date() - timedelta(days=1)).isoformat()


def _timestamps(epoch_seconds: np.ndarray) -> np.ndarray:
    return (np.asarray(epoch_seconds) * 1_000_000).astype("datetime64[us]")


def _id_number(identifier: str, prefix: str) -> int | None:
    digits = identifier[len(prefix) :]
    if identifier.startswith(prefix) and digits.isdigit():
        return int(digits)
    return None


def _item_row(item_id: str, n_items: int) -> int:
    index = _id_number(item_id, "i")
    return index if index is not None and index < n_items else -1
