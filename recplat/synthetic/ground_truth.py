"""A brand's hidden world on the calendar (`GroundTruth`), and the settings it is built from.

The world is a `recplat.simulation.truth.World`; this module puts it on dates (day 0 is the
history's first day), names its users and items as the lake does, gives the items the catalog
the features see, and saves the parameters as `synthetic/groundtruth.json` so that the local
traffic simulator rebuilds the same world (`recplat.synthetic` module docstring).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np

from recplat.simulation.lake import WorldLake
from recplat.simulation.traffic import TrafficSettings
from recplat.simulation.truth import World, WorldParams

# Items there from day 0 were published over this many days before the history starts.
CATALOG_HISTORY_DAYS = 30
# The world runs this many days past the history: the demo's day, with items nobody has seen.
DAYS_AFTER_HISTORY = 1
# The shape of a brand's world. With a random list of 10 users click 0.7 times per request;
# ranking 10 of 30 candidates by popularity earns 1.1 clicks, by the true attraction 1.5: room
# for a model that learns the users' tastes.
WORLD_SHAPE: dict[str, Any] = {"attraction_bias": -3.0, "taste_scale": 2.0, "quality_scale": 0.7}
GROUNDTRUTH_PATH = "synthetic/groundtruth.json"
GROUNDTRUTH_FORMAT_VERSION = 2
SECONDS_PER_DAY = 86_400


class LoggingPolicy(StrEnum):
    """Who served the synthetic history (`recplat.synthetic` module docstring)."""

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


def _id_number(identifier: str, prefix: str) -> int | None:
    digits = identifier[len(prefix) :]
    if identifier.startswith(prefix) and digits.isdigit():
        return int(digits)
    return None


def _item_row(item_id: str, n_items: int) -> int:
    index = _id_number(item_id, "i")
    return index if index is not None and index < n_items else -1
