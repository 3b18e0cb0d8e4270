"""Synthetic lake data from a hidden ground-truth preference model.

The ground truth (`GroundTruth`) is what a real brand never sees: users belong to segments with
category tastes, items have a quality and age (freshness decays), and whether a user clicks an
item depends on that relevance times the chance of looking at the position it is shown at
(position bias). `generate_lake` plays a uniformly random logging policy against it for some
days and writes impressions, feedback and catalog in the lake layout of DESIGN.md. It also
reports the oracle NDCG@10: how well ranking by the true relevance scores on the logged labels,
the ceiling a learned model can approach.

`GroundTruth` rebuilds deterministically from its parameters (seed and sizes), which are saved
as `synthetic/groundtruth.json` in the lake so the local traffic simulator can decide clicks for
rankings it is served. Training never reads that file.
"""

from __future__ import annotations

import json
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

N_CATEGORIES = 12
N_SEGMENTS = 6
# How steeply attention falls with rank: P(examined at position p) = p ** -POSITION_BIAS.
POSITION_BIAS = 0.9
FRESHNESS_HALF_LIFE_DAYS = 5.0
# Items are published over this many days before the data starts, and during it.
CATALOG_HISTORY_DAYS = 30
GROUNDTRUTH_PATH = "synthetic/groundtruth.json"
GROUNDTRUTH_FORMAT_VERSION = 1


@dataclass(frozen=True)
class SynthParams:
    """Everything the synthetic data is a deterministic function of."""

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


@dataclass
class GroundTruth:
    """The hidden preference model. Build it with `GroundTruth.from_params`."""

    params: SynthParams
    user_taste: np.ndarray = field(repr=False)  # users x categories, log(C * preference)
    segment_taste: np.ndarray = field(repr=False)  # segments x categories, same scale
    item_category: np.ndarray = field(repr=False)
    item_quality: np.ndarray = field(repr=False)
    item_published_at: np.ndarray = field(repr=False)  # epoch seconds

    @classmethod
    def from_params(cls, params: SynthParams) -> GroundTruth:
        rng = np.random.default_rng(params.seed)
        segment_pref = rng.dirichlet(np.full(N_CATEGORIES, 0.4), size=N_SEGMENTS)
        segment = rng.integers(0, N_SEGMENTS, params.users)
        personal = rng.dirichlet(np.full(N_CATEGORIES, 1.0), size=params.users)
        user_pref = 0.8 * segment_pref[segment] + 0.2 * personal
        first_publish = params.start.timestamp() - CATALOG_HISTORY_DAYS * 86_400
        last_publish = params.start.timestamp() + (params.days - 1) * 86_400
        return cls(
            params=params,
            user_taste=_taste(user_pref),
            segment_taste=_taste(segment_pref),
            item_category=rng.integers(0, N_CATEGORIES, params.items),
            item_quality=rng.normal(0.0, 1.0, params.items),
            item_published_at=np.floor(rng.uniform(first_publish, last_publish, params.items)),
        )

    def user_rows(self, user_ids: list[str]) -> np.ndarray:
        """Row per user; users outside the data get -(1 + segment), a segment from their id."""
        rows = np.empty(len(user_ids), dtype=np.int64)
        for i, user_id in enumerate(user_ids):
            index = _id_number(user_id, "u")
            if index is not None and index < self.params.users:
                rows[i] = index
            else:
                rows[i] = -1 - zlib.crc32(user_id.encode()) % N_SEGMENTS
        return rows

    def relevance(self, user_id: str, item_ids: list[str], now: float) -> np.ndarray:
        """P(click | examined) per item: the position-free relevance an oracle ranks by."""
        user = self.user_rows([user_id])[0]
        items = np.array([_item_row(i, self.params.items) for i in item_ids], dtype=np.int64)
        return self._relevance(np.full(len(items), user), items, np.full(len(items), now))

    def click_probability(self, user_id: str, item_id: str, position: int, now: float) -> float:
        """P(click) for `item_id` shown to `user_id` at 1-based `position` at `now` (epoch s)."""
        return float(self.relevance(user_id, [item_id], now)[0] * examination(position))

    def _relevance(self, users: np.ndarray, items: np.ndarray, now: np.ndarray) -> np.ndarray:
        known = items >= 0
        safe = np.where(known, items, 0)
        category = self.item_category[safe]
        taste = np.where(
            users >= 0,
            self.user_taste[np.maximum(users, 0), category],
            self.segment_taste[np.maximum(-1 - users, 0), category],
        )
        age_days = np.maximum(now - self.item_published_at[safe], 0.0) / 86_400
        freshness = 0.5 ** (age_days / FRESHNESS_HALF_LIFE_DAYS)
        logit = -1.6 + 0.9 * taste + 0.8 * self.item_quality[safe] + 1.2 * freshness
        return np.where(known, _sigmoid(logit), _sigmoid(np.array(-1.6)))

    def to_json(self) -> str:
        return json.dumps({"format_version": GROUNDTRUTH_FORMAT_VERSION, **asdict(self.params)})

    @classmethod
    def from_json(cls, text: str) -> GroundTruth:
        data = json.loads(text)
        data.pop("format_version", None)
        return cls.from_params(SynthParams(**data))

    @classmethod
    def load(cls, lake_uri: str) -> GroundTruth:
        """Rebuild the ground truth of a synthetic lake from its `synthetic/groundtruth.json`."""
        from ranking_features.lake import open_lake

        fs, root = open_lake(lake_uri)
        with fs.open(f"{root}/{GROUNDTRUTH_PATH}", "r") as handle:
            return cls.from_json(handle.read())


def examination(position: int | np.ndarray) -> np.ndarray | float:
    """P(a user looks at the item at 1-based `position`): the position bias in clicks."""
    return np.asarray(position, dtype=np.float64) ** -POSITION_BIAS


@dataclass
class SyntheticData:
    """Generated tables (pyarrow) and the oracle's quality on them."""

    impressions: pa.Table
    feedback: pa.Table
    catalog: pa.Table
    oracle: dict[str, float]
    truth: GroundTruth


def generate(params: SynthParams) -> SyntheticData:
    """Play a uniformly random ranking policy against the ground truth for `params.days` days."""
    import pyarrow as pa
    from ranking_features.events import CATALOG_SCHEMA, FEEDBACK_SCHEMA, IMPRESSION_SCHEMA
    from ranking_training.metrics import ranking_metrics

    truth = GroundTruth.from_params(params)
    rng = np.random.default_rng(params.seed + 1)
    start = params.start.timestamp()
    item_ids = np.array([f"i{i:06d}" for i in range(params.items)], dtype=object)
    user_ids = np.array([f"u{u:06d}" for u in range(params.users)], dtype=object)
    list_size = min(params.list_size, params.items)

    users, items, times, positions = [], [], [], []
    for day in range(params.days):
        day_start = start + day * 86_400
        eligible = np.flatnonzero(truth.item_published_at <= day_start)
        n_requests = rng.poisson(params.users * params.requests_per_user_per_day)
        if len(eligible) < list_size or n_requests == 0:
            continue
        users.append(np.repeat(rng.integers(0, params.users, n_requests), list_size))
        request_ts = np.floor(rng.uniform(day_start, day_start + 86_399, n_requests))
        times.append(np.repeat(request_ts, list_size))
        # Candidates are distinct within a list, as the service's API requires.
        lists = np.stack(
            [rng.choice(eligible, list_size, replace=False) for _ in range(n_requests)]
        )
        items.append(lists.ravel())
        positions.append(np.tile(np.arange(1, list_size + 1), n_requests))
    user = np.concatenate(users)
    item = np.concatenate(items)
    ts = np.concatenate(times)
    position = np.concatenate(positions)
    n_rows = len(item)
    n_requests_total = n_rows // list_size
    order = np.argsort(ts[::list_size], kind="stable")
    row_order = (order[:, None] * list_size + np.arange(list_size)).ravel()
    user, item, ts, position = user[row_order], item[row_order], ts[row_order], position[row_order]

    relevance = truth._relevance(user, item, ts)
    clicked = rng.random(n_rows) < relevance * examination(position)
    converted = clicked & (rng.random(n_rows) < 0.5 * _sigmoid(truth.item_quality[item] - 1.0))
    looked = rng.random(n_rows) < examination(position)
    dismissed = ~clicked & looked & (rng.random(n_rows) < 0.15 * (1.0 - relevance))

    request_keys = rng.integers(0, 2**63, n_requests_total)
    request_ids = np.array([uuid.UUID(int=int(key)).hex for key in request_keys])
    request_id = np.repeat(request_ids, list_size)
    impressions = pa.table(
        {
            "event_id": [f"{r}-{p}" for r, p in zip(request_id, position, strict=True)],
            "request_id": request_id,
            "ts": _timestamps(ts),
            "user_id": user_ids[user],
            "item_id": item_ids[item],
            "position": position.astype(np.int32),
            "score": np.zeros(n_rows),
            "model_name": np.full(n_rows, "synthetic-random-policy"),
            "model_version": np.full(n_rows, "0"),
            "variant": np.full(n_rows, "champion"),
            "brand": np.full(n_rows, params.brand),
        },
        schema=IMPRESSION_SCHEMA,
    )

    click_ts = ts + np.floor(1.0 + rng.exponential(20.0, n_rows))
    feedback_parts = [
        ("click", clicked, click_ts),
        ("conversion", converted, click_ts + np.floor(1.0 + rng.exponential(120.0, n_rows))),
        ("dismiss", dismissed, ts + np.floor(1.0 + rng.exponential(10.0, n_rows))),
    ]
    names = ("event_id", "request_id", "ts", "user_id", "item_id", "type")
    columns: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for kind, mask, event_ts in feedback_parts:
        rows = np.flatnonzero(mask)
        event_ids = [f"{request_id[r]}-{position[r]}-{kind}" for r in rows]
        columns["event_id"].append(np.array(event_ids, dtype=object))
        columns["request_id"].append(request_id[rows])
        columns["ts"].append(event_ts[rows])
        columns["user_id"].append(user_ids[user[rows]])
        columns["item_id"].append(item_ids[item[rows]])
        columns["type"].append(np.full(len(rows), kind, dtype=object))
    merged = {k: np.concatenate(v) for k, v in columns.items()}
    by_time = np.argsort(merged["ts"], kind="stable")
    feedback = (
        pa.table(
            {
                **{k: v[by_time] for k, v in merged.items() if k != "ts"},
                "ts": _timestamps(merged["ts"][by_time]),
                "brand": np.full(len(by_time), params.brand),
            }
        )
        .select(FEEDBACK_SCHEMA.names)
        .cast(FEEDBACK_SCHEMA)
    )

    catalog = pa.table(
        {
            "item_id": item_ids,
            "category": [f"cat{c:02d}" for c in truth.item_category],
            "published_at": _timestamps(truth.item_published_at),
            "title": [f"Item {i}" for i in range(params.items)],
        },
        schema=CATALOG_SCHEMA,
    )

    labels = np.where(converted, 2.0, np.where(clicked, 1.0, 0.0))
    oracle = ranking_metrics(labels, relevance, np.full(n_requests_total, list_size))
    return SyntheticData(impressions, feedback, catalog, oracle, truth)


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


def _taste(preference: np.ndarray) -> np.ndarray:
    return np.clip(np.log(preference * preference.shape[-1]), -3.0, 2.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


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
