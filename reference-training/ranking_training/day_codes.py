"""The window's catalog, clicking users and clicks, coded as every day task of
`ranking_training.day_features` codes them (as `EncodedEvents.from_lake` does in memory)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
from ranking_features.definition import SESSION_LENGTH


@dataclass(frozen=True)
class CatalogCodes:
    """The catalog as every snapshot encodes it (as `EncodedEvents.from_lake` does)."""

    categories: list[str]
    item_ids: list[str]
    item_category: np.ndarray
    item_published_at: np.ndarray

    @classmethod
    def of(cls, catalog: pd.DataFrame) -> CatalogCodes:
        categories = sorted(catalog["category"].unique())
        return cls(
            categories=categories,
            item_ids=catalog["item_id"].tolist(),
            item_category=pd.Index(categories).get_indexer(catalog["category"]),
            item_published_at=catalog["published_at"].to_numpy(np.float64),
        )

    @cached_property
    def index(self) -> pd.Index:
        return pd.Index(self.item_ids)

    def rows(self, item_ids: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Each id's catalog row, -1 for ids it does not have."""
        column = item_ids.combine_chunks() if isinstance(item_ids, pa.ChunkedArray) else item_ids
        if pa.types.is_dictionary(column.type):
            known = self.index.get_indexer(column.dictionary.to_pandas())
            return known[column.indices.to_numpy(zero_copy_only=False)].astype(np.int64)
        return self.index.get_indexer(column.to_pandas()).astype(np.int64)


@dataclass(frozen=True)
class ClickingUsers:
    """The window's users with a click, sorted: the rows of its snapshots' user tables."""

    ids: list[str]

    @cached_property
    def index(self) -> pd.Index:
        return pd.Index(self.ids)

    def codes(self, user_ids: pa.Array | pa.ChunkedArray | np.ndarray) -> np.ndarray:
        """Each id's row, -1 for users without a click."""
        values = user_ids.to_pandas() if not isinstance(user_ids, np.ndarray) else user_ids
        return self.index.get_indexer(pd.Index(values)).astype(np.int64)


@dataclass(frozen=True)
class ClickLog:
    """Clicks in the log's order: user (code among the window's clicking users), item id, time."""

    user: np.ndarray
    item: pa.Array
    ts: np.ndarray

    @classmethod
    def empty(cls) -> ClickLog:
        return cls(np.zeros(0, np.int64), pa.array([], pa.string()), np.zeros(0))

    @classmethod
    def concat(cls, logs: list[ClickLog]) -> ClickLog:
        return cls(
            np.concatenate([log.user for log in logs]),
            pa.concat_arrays([log.item for log in logs]),
            np.concatenate([log.ts for log in logs]),
        )

    def take(self, rows: np.ndarray) -> ClickLog:
        return ClickLog(self.user[rows], self.item.take(pa.array(rows)), self.ts[rows])

    def last_per_user(self) -> ClickLog:
        """Each user's last `SESSION_LENGTH` clicks, by time (ties in log order), by user."""
        if len(self.user) == 0:
            return self
        order = np.lexsort((self.ts, self.user))
        user = self.user[order]
        starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
        group = np.cumsum(np.r_[True, user[1:] != user[:-1]]) - 1
        size = np.diff(np.r_[starts, len(user)])
        place = np.arange(len(user)) - starts[group]
        return self.take(order[place >= size[group] - SESSION_LENGTH])
