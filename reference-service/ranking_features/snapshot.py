"""FeatureSnapshot: the per-item and per-user statistics that features are computed from.

A snapshot is taken *as of* a time: it aggregates only events strictly before `as_of` (and at or
after `window_start`). Training takes one snapshot per day boundary, so an impression is
featurised from events before its day; serving uses the snapshot of the newest training run.
Both build it with `FeatureSnapshot.from_events`, numpy only, so the service can load and use it
without pandas. Stored as JSON (`to_json`/`save`/`load`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SNAPSHOT_FORMAT_VERSION = 1


@dataclass(eq=False)
class FeatureSnapshot:
    """Statistics as of `as_of` (epoch seconds, UTC) over the window [window_start, as_of)."""

    as_of: float
    window_start: float
    categories: list[str]
    item_ids: list[str]
    # Index into `categories` per item.
    item_category: np.ndarray
    # Epoch seconds per item.
    item_published_at: np.ndarray
    # Impressions and clicks per item in the window.
    item_impressions: np.ndarray
    item_clicks: np.ndarray
    user_ids: list[str]
    # Clicks per user (rows) and category (columns) in the window.
    user_category_clicks: np.ndarray
    # Cold-start defaults: the window's click-through rate and click share per category.
    global_ctr: float
    global_category_share: np.ndarray
    # Derived on load: clicks per user, and the window's totals.
    user_click_totals: np.ndarray = field(init=False, repr=False)
    total_impressions: float = field(init=False, repr=False)
    total_clicks: float = field(init=False, repr=False)
    # Row of each item id (item codes in `definition.ItemCodes` build on it).
    item_index: dict[str, int] = field(init=False, repr=False)
    _user_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.item_category = np.asarray(self.item_category, dtype=np.int64)
        self.item_published_at = np.asarray(self.item_published_at, dtype=np.float64)
        self.item_impressions = np.asarray(self.item_impressions, dtype=np.float64)
        self.item_clicks = np.asarray(self.item_clicks, dtype=np.float64)
        n_categories = len(self.categories)
        self.user_category_clicks = np.asarray(self.user_category_clicks, dtype=np.float64)
        self.user_category_clicks = self.user_category_clicks.reshape(-1, n_categories)
        self.global_category_share = np.asarray(self.global_category_share, dtype=np.float64)
        n_items = len(self.item_ids)
        for name in ("item_category", "item_published_at", "item_impressions", "item_clicks"):
            if len(getattr(self, name)) != n_items:
                raise ValueError(f"FeatureSnapshot.{name}: expected {n_items} values, one per item")
        if self.user_category_clicks.shape[0] != len(self.user_ids):
            raise ValueError("FeatureSnapshot.user_category_clicks: expected one row per user")
        self.user_click_totals = self.user_category_clicks.sum(axis=1)
        self.total_impressions = float(self.item_impressions.sum())
        self.total_clicks = float(self.item_clicks.sum())
        self.item_index = {item_id: i for i, item_id in enumerate(self.item_ids)}
        self._user_index = {user_id: i for i, user_id in enumerate(self.user_ids)}

    def item_positions(self, item_ids: Sequence[str]) -> np.ndarray:
        """Row of each item in this snapshot, -1 for items it does not know."""
        index = self.item_index
        rows = (index.get(i, -1) for i in item_ids)
        return np.fromiter(rows, dtype=np.int64, count=len(item_ids))

    def user_positions(self, user_ids: Sequence[str]) -> np.ndarray:
        """Row of each user in this snapshot, -1 for users it does not know."""
        index = self._user_index
        rows = (index.get(u, -1) for u in user_ids)
        return np.fromiter(rows, dtype=np.int64, count=len(user_ids))

    @classmethod
    def from_events(
        cls,
        *,
        as_of: float,
        window_start: float,
        catalog_item_ids: Sequence[str],
        catalog_categories: Sequence[str],
        catalog_published_at: np.ndarray,
        impression_item_ids: Sequence[str],
        impression_ts: np.ndarray,
        click_user_ids: Sequence[str],
        click_item_ids: Sequence[str],
        click_ts: np.ndarray,
    ) -> FeatureSnapshot:
        """Aggregate raw events (timestamps in epoch seconds) into a snapshot as of `as_of`.

        Only events with window_start <= ts < as_of count. Events for items missing from the
        catalog are ignored: features describe catalog items only.
        """
        categories = sorted(set(catalog_categories))
        category_index = {c: i for i, c in enumerate(categories)}
        item_index = {item_id: i for i, item_id in enumerate(catalog_item_ids)}
        user_ids = sorted(set(click_user_ids))
        user_index = {u: i for i, u in enumerate(user_ids)}
        return cls.from_indexed(
            as_of=as_of,
            window_start=window_start,
            categories=categories,
            item_ids=list(catalog_item_ids),
            item_category=np.array([category_index[c] for c in catalog_categories], dtype=np.int64),
            item_published_at=np.asarray(catalog_published_at, dtype=np.float64),
            impression_items=np.array([item_index.get(i, -1) for i in impression_item_ids]),
            impression_ts=np.asarray(impression_ts, dtype=np.float64),
            user_ids=user_ids,
            click_users=np.array([user_index[u] for u in click_user_ids], dtype=np.int64),
            click_items=np.array([item_index.get(i, -1) for i in click_item_ids], dtype=np.int64),
            click_ts=np.asarray(click_ts, dtype=np.float64),
        )

    @classmethod
    def from_indexed(
        cls,
        *,
        as_of: float,
        window_start: float,
        categories: list[str],
        item_ids: list[str],
        item_category: np.ndarray,
        item_published_at: np.ndarray,
        impression_items: np.ndarray,
        impression_ts: np.ndarray,
        user_ids: list[str],
        click_users: np.ndarray,
        click_items: np.ndarray,
        click_ts: np.ndarray,
    ) -> FeatureSnapshot:
        """`from_events` for events already encoded as rows of `item_ids` and `user_ids` (-1:
        unknown). Training encodes once and calls this per day boundary, which keeps taking
        many point-in-time snapshots cheap.
        """
        n_items = len(item_ids)
        impression_items = np.asarray(impression_items, dtype=np.int64)
        keep = (impression_ts >= window_start) & (impression_ts < as_of) & (impression_items >= 0)
        impressions = np.bincount(impression_items[keep], minlength=n_items).astype(np.float64)

        click_items = np.asarray(click_items, dtype=np.int64)
        keep = (click_ts >= window_start) & (click_ts < as_of) & (click_items >= 0)
        clicks = np.bincount(click_items[keep], minlength=n_items).astype(np.float64)

        n_categories = len(categories)
        cell = click_users[keep] * n_categories + item_category[click_items[keep]]
        user_category_clicks = np.bincount(cell, minlength=len(user_ids) * n_categories)
        user_category_clicks = user_category_clicks.reshape(len(user_ids), n_categories)

        return cls(
            as_of=float(as_of),
            window_start=float(window_start),
            categories=categories,
            item_ids=item_ids,
            item_category=item_category,
            item_published_at=item_published_at,
            item_impressions=impressions,
            item_clicks=clicks,
            user_ids=user_ids,
            user_category_clicks=user_category_clicks,
            global_ctr=global_ctr(impressions.sum(), clicks.sum()),
            global_category_share=category_share(user_category_clicks.sum(axis=0)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": SNAPSHOT_FORMAT_VERSION,
            "as_of": self.as_of,
            "window_start": self.window_start,
            "categories": self.categories,
            "item_ids": self.item_ids,
            "item_category": self.item_category.tolist(),
            "item_published_at": self.item_published_at.tolist(),
            "item_impressions": self.item_impressions.tolist(),
            "item_clicks": self.item_clicks.tolist(),
            "user_ids": self.user_ids,
            "user_category_clicks": self.user_category_clicks.tolist(),
            "global_ctr": self.global_ctr,
            "global_category_share": self.global_category_share.tolist(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSnapshot:
        version = data.get("format_version")
        if version != SNAPSHOT_FORMAT_VERSION:
            raise ValueError(
                f"feature snapshot: format_version {version!r} is not supported "
                f"(expected {SNAPSHOT_FORMAT_VERSION}); retrain the model with this release"
            )
        fields = {k: v for k, v in data.items() if k != "format_version"}
        try:
            return cls(**fields)
        except TypeError as error:
            raise ValueError(f"feature snapshot: {error}") from error

    @classmethod
    def load(cls, path: str | Path) -> FeatureSnapshot:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not a JSON feature snapshot: {error}") from error
        return cls.from_dict(data)


def global_ctr(impressions: float, clicks: float) -> float:
    """The window's click-through rate; 0.05 when there is no traffic yet (a new brand)."""
    return float(clicks / impressions) if impressions > 0 else 0.05


def category_share(clicks_per_category: np.ndarray) -> np.ndarray:
    """Each category's share of clicks, uniform when there are no clicks yet."""
    total = clicks_per_category.sum()
    if total <= 0:
        return np.full(len(clicks_per_category), 1.0 / max(len(clicks_per_category), 1))
    return clicks_per_category / total
