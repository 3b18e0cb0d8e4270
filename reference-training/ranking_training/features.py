"""Stage 2: point-in-time features and labels for every logged impression.

Each day's impressions are featurised by `ranking_features.build_feature_matrix`, the function
serving uses, with a `FeatureSnapshot` as of the start of that day (events strictly before it),
and each request's session is the user's clicks strictly before the request. So no feature sees
the impression's own outcome or anything later, and serving computes the same vector for the
same inputs. Labels: conversion 2, click 1, dismiss `dismiss_label`, nothing 0.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

import numpy as np
import pandas as pd
from ranking_features import FEATURE_NAMES, FeatureSnapshot, build_feature_matrix
from ranking_features.definition import SESSION_LENGTH

from ranking_training.data import LakeData
from ranking_training.errors import DataError

LABELS = {"conversion": 2, "click": 1}
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

    @classmethod
    def from_lake(cls, data: LakeData) -> EncodedEvents:
        catalog = data.catalog
        categories = sorted(catalog["category"].unique())
        item_index = pd.Index(catalog["item_id"])
        clicks = data.feedback[data.feedback["type"] == "click"]
        user_ids = sorted(clicks["user_id"].unique())
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
        )

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


def label_impressions(data: LakeData, dismiss_label: int = 0) -> np.ndarray:
    """Label per impression row from the feedback on the same request and item."""
    gains = {**LABELS, "dismiss": dismiss_label}
    linked = data.feedback.dropna(subset=["request_id"])
    linked = linked.assign(gain=linked["type"].map(gains))
    best = linked.groupby(["request_id", "item_id"], sort=False)["gain"].max()
    keys = pd.MultiIndex.from_frame(data.impressions[["request_id", "item_id"]])
    return best.reindex(keys).fillna(0).to_numpy(np.int32)


def build_training_matrix(
    data: LakeData, dismiss_label: int = 0
) -> tuple[RankingMatrix, FeatureSnapshot]:
    """Point-in-time features for all impressions, and the snapshot at the window's end."""
    labels = label_impressions(data, dismiss_label)
    if not (labels > 0).any():
        raise DataError(
            "feedback: no click or conversion links to any impression (by request_id and "
            "item_id); there is nothing to learn from. Check that feedback carries request_id"
        )
    impressions = data.impressions.assign(label=labels)
    # A request's time is its first row's. Rows are sorted by request time, then item id, not
    # by position: metrics break score ties by row order, and position order would hand every
    # tied ranker the logging policy's ranking, which position bias makes look good.
    request_ts = impressions.groupby("request_id", sort=False)["ts"].transform("min")
    impressions = impressions.assign(request_ts=request_ts).sort_values(
        ["request_ts", "request_id", "item_id"], kind="stable"
    )
    encoded = EncodedEvents.from_lake(data)
    recent_lookup = _RecentClicks(data.feedback)

    blocks = []
    day = (impressions["request_ts"] - data.window_start) // 86_400
    for day_index, rows in impressions.groupby(day, sort=True):
        snapshot = encoded.snapshot(data.window_start + day_index * 86_400, data.window_start)
        blocks.append(_featurise(rows, snapshot, recent_lookup))
    features = np.concatenate(blocks)

    group_sizes = impressions.groupby("request_id", sort=False).size()
    first = impressions.drop_duplicates("request_id")
    matrix = RankingMatrix(
        features=features,
        labels=impressions["label"].to_numpy(np.int32),
        positions=impressions["position"].to_numpy(np.int32),
        group_sizes=group_sizes.reindex(first["request_id"]).to_numpy(np.int64),
        request_ts=first["request_ts"].to_numpy(np.float64),
    )
    return matrix, encoded.snapshot(data.window_end, data.window_start)


def _featurise(rows: pd.DataFrame, snapshot: FeatureSnapshot, recent: _RecentClicks) -> np.ndarray:
    requests = rows.drop_duplicates("request_id")
    row_request = pd.Index(requests["request_id"]).get_indexer(rows["request_id"])
    users = requests["user_id"].tolist()
    times = requests["request_ts"].to_numpy(np.float64)
    return build_feature_matrix(
        snapshot,
        user_ids=users,
        request_times=times,
        row_request=row_request,
        row_items=rows["item_id"].tolist(),
        recent_items=[recent.before(u, t) for u, t in zip(users, times.tolist(), strict=True)],
    )


class _RecentClicks:
    """Each user's clicked items in time order, to recover a request's session."""

    def __init__(self, feedback: pd.DataFrame) -> None:
        clicks = feedback[feedback["type"] == "click"].sort_values("ts", kind="stable")
        self._by_user: dict[str, tuple[list[float], list[str]]] = {
            str(user): (group["ts"].tolist(), group["item_id"].tolist())
            for user, group in clicks.groupby("user_id", sort=False)
        }

    def before(self, user_id: str, ts: float) -> list[str]:
        """The user's last SESSION_LENGTH clicked items strictly before `ts`, oldest first."""
        if user_id not in self._by_user:
            return []
        times, items = self._by_user[user_id]
        end = bisect_left(times, ts)
        return items[max(0, end - SESSION_LENGTH) : end]
