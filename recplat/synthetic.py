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
the day after it: the history ends yesterday by default, so that is the day `recplat local
demo` runs, and the items arriving then are new to every model.

`generate` plays a uniformly random logging policy against the world for `params.days` days
and writes impressions, click and conversion feedback and catalog in the lake layout of
DESIGN.md. No service logged it, so its rows carry no `policy`, `propensity` or `pool`: the
counterfactual gate finds no exploration in it (logged as exploration, the history's ~500
requests a day gave intervals of +-0.4 clicks per request, and the gate rejected every first
model). It reports the oracle NDCG@10: ranking
the logged lists by the true attraction, scored on the logged labels.

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
from typing import TYPE_CHECKING, Any

import numpy as np

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

    @property
    def start(self) -> datetime:
        end = datetime.fromisoformat(self.end_date).replace(tzinfo=UTC)
        return end - timedelta(days=self.days - 1)

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


def generate(params: SynthParams) -> SyntheticData:
    """Play a uniformly random ranking policy against the world for `params.days` days."""
    truth = GroundTruth.from_params(params)
    world = truth.world
    rng = np.random.default_rng([params.seed, 2])
    start = params.start.timestamp()
    list_size = min(params.list_size, params.items)

    users, lists, times = [], [], []
    for day in range(params.days):
        day_start = start + day * SECONDS_PER_DAY
        eligible = np.flatnonzero(world.item_arrival_day <= day)
        n_requests = rng.poisson(params.users * params.requests_per_user_per_day)
        if len(eligible) < list_size or n_requests == 0:
            continue
        users.append(rng.choice(params.users, n_requests, p=world.user_activity))
        times.append(np.sort(np.floor(rng.uniform(day_start, day_start + 86_399, n_requests))))
        # Candidates are distinct within a list, as the service's API requires.
        lists.append(
            np.stack([rng.choice(eligible, list_size, replace=False) for _ in range(n_requests)])
        )
    user = np.concatenate(users)
    shown = np.concatenate(lists)
    request_ts = np.concatenate(times)
    clicked, converted = world.sample_clicks(user, shown, rng)
    # A cascade scans top-down, so a list's clicks come in position order.
    click_ts = request_ts[:, None] + np.cumsum(
        np.floor(1.0 + rng.exponential(CLICK_DELAY_S, shown.shape)), axis=1
    )
    conversion_ts = click_ts + np.floor(1.0 + rng.exponential(CONVERSION_DELAY_S, shown.shape))

    request_ids = [uuid.UUID(int=int(key)).hex for key in rng.integers(0, 2**63, len(user))]
    tables = _tables(truth, request_ids, user, shown, request_ts)
    feedback = _feedback(
        truth,
        request_ids,
        user,
        shown,
        [("click", clicked, click_ts), ("conversion", converted, conversion_ts)],
    )
    from ranking_training.metrics import ranking_metrics

    labels = np.where(converted, 2.0, np.where(clicked, 1.0, 0.0))
    oracle = ranking_metrics(
        labels.ravel(),
        world.attraction_logit(user[:, None], shown).ravel(),
        np.full(len(user), list_size),
    )
    return SyntheticData(tables[0], feedback, tables[1], oracle, truth)


def _tables(
    truth: GroundTruth,
    request_ids: list[str],
    user: np.ndarray,
    shown: np.ndarray,
    request_ts: np.ndarray,
) -> tuple[pa.Table, pa.Table]:
    """The impressions (one row per shown item) and the catalog."""
    import pyarrow as pa
    from ranking_features.events import CATALOG_SCHEMA, IMPRESSION_SCHEMA

    params = truth.params
    item_ids = np.array(truth.item_ids(), dtype=object)
    n_requests, list_size = shown.shape
    n_rows = shown.size
    request_id = np.repeat(np.array(request_ids, dtype=object), list_size)
    position = np.tile(np.arange(1, list_size + 1), n_requests)
    no_value = pa.nulls(n_rows)
    impressions = pa.table(
        {
            "event_id": [f"{r}-{p}" for r, p in zip(request_id, position, strict=True)],
            "request_id": request_id,
            "ts": _timestamps(np.repeat(request_ts, list_size)),
            "user_id": [truth.user_id(u) for u in np.repeat(user, list_size)],
            "item_id": item_ids[shown.ravel()],
            "position": position.astype(np.int32),
            "score": np.zeros(n_rows),
            "model_name": np.full(n_rows, "synthetic-random-policy"),
            "model_version": np.full(n_rows, "0"),
            "variant": np.full(n_rows, "champion"),
            "brand": np.full(n_rows, params.brand),
            "policy": no_value,
            "propensity": no_value,
            "pool": no_value,
            "experiment_id": no_value,
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
