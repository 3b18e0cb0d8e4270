"""Stage 2: point-in-time features and labels for every logged impression.

Each day's impressions are featurised by `ranking_features.build_encoded_feature_matrix`, the
computation serving runs for one request (through `build_features`), with a `FeatureSnapshot`
as of the start of that day (events strictly before it), and each request's session is the
user's clicks strictly before the request. So no feature sees the impression's own outcome or
anything later, and serving computes the same vector for the same inputs. The whole window is
encoded to integer codes once (items, users, sessions); each day is then plain numpy.
Labels: conversion 2, click 1, dismiss `dismiss_label`, nothing 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from ranking_features import FEATURE_NAMES, FeatureSnapshot, build_encoded_feature_matrix
from ranking_features.definition import SESSION_LENGTH
from ranking_features.events import CLICK, CONVERSION, DISMISS

from ranking_training.data import LakeData
from ranking_training.errors import DataError

LABELS = {CONVERSION: 2, CLICK: 1}
POPULARITY_FEATURE = FEATURE_NAMES.index("item_click_share")


@dataclass
class RankingMatrix:
    """Feature rows grouped by request (contiguous, in time order), as LightGBM wants them."""

    features: np.ndarray
    labels: np.ndarray
    # Per row: the 1-based rank it was served at (for unbiased LambdaMART).
    positions: np.ndarray
    group_sizes: np.ndarray
    # Per request: its time (epoch seconds).
    request_ts: np.ndarray

    def take_requests(self, mask: np.ndarray) -> RankingMatrix:
        rows = np.repeat(mask, self.group_sizes)
        return RankingMatrix(
            self.features[rows],
            self.labels[rows],
            self.positions[rows],
            self.group_sizes[mask],
            self.request_ts[mask],
        )

    @property
    def n_requests(self) -> int:
        return len(self.group_sizes)


@dataclass
class EncodedEvents:
    """Events encoded against the catalog, shared by every point-in-time snapshot."""

    categories: list[str]
    item_ids: list[str]
    item_category: np.ndarray
    item_published_at: np.ndarray
    user_ids: list[str]
    impression_items: np.ndarray
    impression_ts: np.ndarray
    click_users: np.ndarray
    click_items: np.ndarray
    click_ts: np.ndarray
    # Item codes as `ranking_features.ItemCodes` gives them (catalog row, or a code past the
    # catalog per unknown id), per impression row and per click.
    impression_codes: np.ndarray
    click_codes: np.ndarray
    # The codes given to ids missing from the catalog (past its rows).
    unknown_codes: dict[str, int]

    @classmethod
    def from_lake(cls, data: LakeData) -> EncodedEvents:
        catalog = data.catalog
        categories = sorted(catalog["category"].unique())
        item_index = pd.Index(catalog["item_id"])
        clicks = data.feedback[data.feedback["type"] == CLICK]
        user_ids = sorted(clicks["user_id"].unique())
        impression_codes, click_codes = item_codes_of(
            item_index, data.impressions["item_id"], clicks["item_id"]
        )
        unknown_codes = {
            str(item_id): int(code)
            for column, codes in (
                (data.impressions["item_id"], impression_codes),
                (clicks["item_id"], click_codes),
            )
            for item_id, code in zip(np.asarray(column), codes, strict=True)
            if code >= len(item_index)
        }
        return cls(
            categories=categories,
            item_ids=catalog["item_id"].tolist(),
            item_category=pd.Index(categories).get_indexer(catalog["category"]),
            item_published_at=catalog["published_at"].to_numpy(np.float64),
            user_ids=user_ids,
            impression_items=item_index.get_indexer(data.impressions["item_id"]),
            impression_ts=data.impressions["ts"].to_numpy(np.float64),
            click_users=pd.Index(user_ids).get_indexer(clicks["user_id"]),
            click_items=item_index.get_indexer(clicks["item_id"]),
            click_ts=clicks["ts"].to_numpy(np.float64),
            impression_codes=impression_codes,
            click_codes=click_codes,
            unknown_codes=unknown_codes,
        )

    def item_codes(self, item_ids: np.ndarray) -> np.ndarray:
        """`ItemCodes` of any item ids: the catalog row, the code the window gave an unknown
        id, or a new code past those for ids the window never saw."""
        codes = pd.Index(self.item_ids).get_indexer(pd.Index(item_ids)).astype(np.int64)
        next_code = len(self.item_ids) + len(self.unknown_codes)
        extra: dict[str, int] = {}
        for row in np.flatnonzero(codes < 0):
            item_id = str(item_ids[row])
            code = self.unknown_codes.get(item_id)
            if code is None:
                code = extra.setdefault(item_id, next_code + len(extra))
            codes[row] = code
        return codes

    def user_rows(self, user_ids: np.ndarray) -> np.ndarray:
        """Each user's code among the users with clicks, -1 for the others."""
        return pd.Index(self.user_ids).get_indexer(pd.Index(user_ids)).astype(np.int64)

    def features(
        self,
        window_start: float,
        *,
        users: np.ndarray,
        times: np.ndarray,
        row_request: np.ndarray,
        row_items: np.ndarray,
    ) -> np.ndarray:
        """Point-in-time features of requests sorted by time (rows contiguous per request):
        each day's requests with the snapshot as of that day's start, and each request's
        session from its user's clicks strictly before it, as `build_training_matrix` does."""
        sessions = self.sessions(users, times)
        bounds = np.r_[0, np.cumsum(np.bincount(row_request, minlength=len(times)))]
        blocks = []
        day = (times - window_start) // 86_400
        day_starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
        for r0, r1 in zip(day_starts, np.r_[day_starts[1:], len(times)], strict=True):
            snapshot = self.snapshot(window_start + day[r0] * 86_400, window_start)
            s0, s1 = bounds[r0], bounds[r1]
            blocks.append(
                build_encoded_feature_matrix(
                    snapshot,
                    user_rows=users[r0:r1],
                    request_times=times[r0:r1],
                    row_request=row_request[s0:s1] - r0,
                    row_items=row_items[s0:s1],
                    sessions=sessions[r0:r1],
                )
            )
        if not blocks:
            return np.empty((0, len(FEATURE_NAMES)), dtype=np.float32)
        return np.concatenate(blocks)

    def sessions(self, request_users: np.ndarray, request_ts: np.ndarray) -> np.ndarray:
        """Each request's session: the item codes of its user's last SESSION_LENGTH clicks
        strictly before the request, oldest first, padded with -1 (rows of `ItemCodes`)."""
        sessions = np.full((len(request_users), SESSION_LENGTH), -1, dtype=np.int64)
        if len(self.click_ts) == 0 or len(request_users) == 0:
            return sessions
        # Clicks by user, then time (stable: equal times keep the log's order).
        order = np.lexsort((self.click_ts, self.click_users))
        # Rank click and request times together, so (user, time) compares as one integer.
        _, rank = np.unique(np.r_[self.click_ts[order], request_ts], return_inverse=True)
        stride = int(rank.max()) + 2
        click_key = self.click_users[order] * stride + rank[: len(order)]
        known = request_users >= 0
        request_key = np.where(known, request_users, 0) * stride + rank[len(order) :]
        end = np.searchsorted(click_key, request_key, side="left")
        user_start = np.searchsorted(click_key, np.where(known, request_users, 0) * stride)
        start = np.maximum(user_start, end - SESSION_LENGTH)
        length = np.where(known, end - start, 0)
        slot = np.arange(SESSION_LENGTH)
        taken = slot < length[:, None]
        index = np.minimum(start[:, None] + slot, len(order) - 1)
        sessions[taken] = self.click_codes[order][index[taken]]
        return sessions

    def snapshot(self, as_of: float, window_start: float) -> FeatureSnapshot:
        """The snapshot of events in [window_start, as_of): what serving would have had."""
        return FeatureSnapshot.from_indexed(
            as_of=as_of,
            window_start=window_start,
            categories=self.categories,
            item_ids=self.item_ids,
            item_category=self.item_category,
            item_published_at=self.item_published_at,
            impression_items=self.impression_items,
            impression_ts=self.impression_ts,
            user_ids=self.user_ids,
            click_users=self.click_users,
            click_items=self.click_items,
            click_ts=self.click_ts,
        )


@dataclass
class DayEncoding(EncodedEvents):
    """`EncodedEvents` of a part of a window (some days, some users), for the same `features`:
    its point-in-time snapshots come ready-made from the window's aggregates, and its clicks
    are only those its requests' sessions need (`ranking_training.day_features`)."""

    snapshots: dict[float, FeatureSnapshot] = field(default_factory=dict)
    # The index of `user_ids`, when the caller has one built already.
    user_index: pd.Index | None = None

    def snapshot(self, as_of: float, window_start: float) -> FeatureSnapshot:
        return self.snapshots[as_of]

    def user_rows(self, user_ids: np.ndarray) -> np.ndarray:
        if self.user_index is None:
            return super().user_rows(user_ids)
        return self.user_index.get_indexer(pd.Index(user_ids)).astype(np.int64)


def _codes_in_id_order(ids: pd.Series) -> np.ndarray:
    """A code per row, equal for equal ids and ordered like the ids (for categorical columns
    too, whatever the order of their categories)."""
    codes, uniques = pd.factorize(ids)
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[np.argsort(np.asarray(uniques, dtype=object), kind="stable")] = np.arange(len(uniques))
    return rank[codes]


def item_codes_of(catalog: pd.Index, *columns: pd.Series | np.ndarray) -> list[np.ndarray]:
    """`ItemCodes` for whole columns at once: the catalog row, or one code per unknown id
    after the catalog's rows, shared across the columns."""
    codes = [catalog.get_indexer(pd.Index(column)).astype(np.int64) for column in columns]
    unknown = [c < 0 for c in codes]
    if any(u.any() for u in unknown):
        ids = np.concatenate([np.asarray(col)[u] for col, u in zip(columns, unknown, strict=True)])
        extra = len(catalog) + pd.factorize(ids)[0]
        for code, u in zip(codes, unknown, strict=True):
            code[u], extra = extra[: u.sum()], extra[u.sum() :]
    return codes


def label_impressions(data: LakeData, dismiss_label: int = 0) -> np.ndarray:
    """Label per impression row from the feedback on the same request and item."""
    return label_rows(data.impressions, data.feedback, dismiss_label)


def label_rows(
    impressions: pd.DataFrame, feedback: pd.DataFrame, dismiss_label: int = 0
) -> np.ndarray:
    """Label per impression row (request_id, item_id) from matched feedback (request_id,
    item_id, type): the best gain of its feedback. `feedback` must hold all of it, so a part of
    the window labels its rows when it holds every feedback on their requests."""
    gains = {**LABELS, DISMISS: dismiss_label}
    linked = feedback.dropna(subset=["request_id"])
    linked = linked.assign(gain=linked["type"].map(gains))
    best = linked.groupby(["request_id", "item_id"], sort=False)["gain"].max()
    keys = pd.MultiIndex.from_frame(impressions[["request_id", "item_id"]])
    return best.reindex(keys).fillna(0).to_numpy(np.int32)


NO_LABELS = (
    "feedback: no click or conversion links to any impression (by request_id and "
    "item_id); there is nothing to learn from. Check that feedback carries request_id"
)


def build_training_matrix(
    data: LakeData, dismiss_label: int = 0
) -> tuple[RankingMatrix, FeatureSnapshot]:
    """Point-in-time features for all impressions of an in-memory window, and the snapshot at
    the window's end (the training job computes the same per day where its rows live,
    `ranking_training.day_features`)."""
    labels = label_impressions(data, dismiss_label)
    if not (labels > 0).any():
        raise DataError(NO_LABELS)
    encoded = EncodedEvents.from_lake(data)
    matrix = ranking_matrix(
        data.impressions, labels, encoded, encoded.impression_codes, data.window_start
    )
    return matrix, encoded.snapshot(data.window_end, data.window_start)


def ranking_matrix(
    impressions: pd.DataFrame,
    labels: np.ndarray,
    encoded: EncodedEvents,
    item_codes: np.ndarray,
    window_start: float,
) -> RankingMatrix:
    """The rows of `impressions` (request_id, ts, user_id, item_id, position) grouped by request
    in time order, featurised point in time by `encoded`; `item_codes` are the rows' items as
    `encoded` codes them. A whole window or one day of it: requests never cross days."""
    request = _codes_in_id_order(impressions["request_id"])
    ts = impressions["ts"].to_numpy(np.float64)
    # A request's time is its first row's. Rows are sorted by request time, then item id, not
    # by position: metrics break score ties by row order, and position order would hand every
    # tied ranker the logging policy's ranking, which position bias makes look good.
    request_ts = pd.Series(ts).groupby(request).min().to_numpy()
    item_rank = _codes_in_id_order(impressions["item_id"])
    order = np.lexsort((item_rank, request, request_ts[request]))

    row_items = item_codes[order]
    # Renumber requests 0..n-1 in time order; a request's rows are contiguous.
    sorted_request = request[order]
    first = np.flatnonzero(np.r_[True, sorted_request[1:] != sorted_request[:-1]])
    bounds = np.r_[first, len(order)]
    group_sizes = np.diff(bounds)
    row_request = np.repeat(np.arange(len(first)), group_sizes)
    times = request_ts[sorted_request[first]]
    users = encoded.user_rows(np.asarray(impressions["user_id"].iloc[order[first]], dtype=object))
    features = encoded.features(
        window_start,
        users=users,
        times=times,
        row_request=row_request,
        row_items=row_items,
    )
    return RankingMatrix(
        features=features,
        labels=np.asarray(labels)[order],
        positions=impressions["position"].to_numpy(np.int32)[order],
        group_sizes=group_sizes.astype(np.int64),
        request_ts=times,
    )
