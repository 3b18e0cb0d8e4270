"""The feature vector: names, cold-start defaults and the one function that computes it.

`build_encoded_feature_matrix` computes features for a batch of ranking requests from a
`FeatureSnapshot`, on integer item codes (`ItemCodes`). Serving reaches it through
`build_features` (one request, ids encoded per request); training encodes a whole window once
and calls it for each day's requests with that day's point-in-time snapshot. Same code, same
numbers.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ranking_features.snapshot import FeatureSnapshot

FEATURE_VERSION = 1

FEATURE_NAMES: tuple[str, ...] = (
    "item_age_days",
    "item_impression_share",
    "item_ctr",
    "item_click_share",
    "user_category_affinity",
    "user_log_clicks",
    "recent_same_category",
    "recently_seen",
)

# Pseudo-impressions at the global CTR added to every item: an item needs traffic to stand out.
CTR_PRIOR_IMPRESSIONS = 20.0
# Pseudo-clicks spread by global category share: a user needs clicks to have a taste.
AFFINITY_PRIOR_CLICKS = 5.0
# Age given to items the snapshot does not know: they are most likely new since it was taken.
UNKNOWN_ITEM_AGE_DAYS = 0.0
# The session is the user's latest SESSION_LENGTH clicks, newest last (docs/architecture.md,
# "Sessions"): serving keeps the last SESSION_LENGTH of the caller's `recent_items`, training the
# last SESSION_LENGTH clicks before each request.
SESSION_LENGTH = 10

SECONDS_PER_DAY = 86_400.0


def build_features(
    snapshot: FeatureSnapshot,
    user_id: str,
    candidates: Sequence[str],
    recent_items: Sequence[str] = (),
    now: float | None = None,
) -> np.ndarray:
    """Features of one request, shape (len(candidates), len(FEATURE_NAMES)), float32.

    `recent_items` is the session: the user's latest clicked item ids, newest last (the caller's
    record; docs/architecture.md, "Sessions"). `now` is epoch seconds (default: the wall clock).
    Unknown users and items get the cold-start defaults documented in `feature_spec()`.
    """
    return build_feature_matrix(
        snapshot,
        user_ids=[user_id],
        request_times=np.array([time.time() if now is None else now], dtype=np.float64),
        row_request=np.zeros(len(candidates), dtype=np.int64),
        row_items=candidates,
        recent_items=[recent_items],
    )


def build_feature_matrix(
    snapshot: FeatureSnapshot,
    *,
    user_ids: Sequence[str],
    request_times: np.ndarray,
    row_request: np.ndarray,
    row_items: Sequence[str],
    recent_items: Sequence[Sequence[str]],
) -> np.ndarray:
    """Features of many requests at once, from ids.

    Per request r: user_ids[r], request_times[r] (epoch seconds), recent_items[r] (the session:
    the user's latest clicked item ids, newest last).
    Per row: row_request (index of its request) and row_items (the candidate item id).
    """
    codes = ItemCodes(snapshot)
    return build_encoded_feature_matrix(
        snapshot,
        user_rows=snapshot.user_positions(user_ids),
        request_times=request_times,
        row_request=row_request,
        row_items=codes.encode(row_items),
        sessions=codes.sessions(recent_items),
    )


class ItemCodes:
    """Integer codes for item ids: the snapshot row for items it knows, and for the others a
    code from len(snapshot.item_ids) up, one per distinct id. Equal ids get equal codes."""

    def __init__(self, snapshot: FeatureSnapshot) -> None:
        self._index = snapshot.item_index
        self._unknown: dict[str, int] = {}
        self._first_unknown = len(snapshot.item_ids)

    def code(self, item_id: str) -> int:
        row = self._index.get(item_id)
        if row is not None:
            return row
        unknown = self._unknown
        if item_id not in unknown:
            unknown[item_id] = self._first_unknown + len(unknown)
        return unknown[item_id]

    def encode(self, item_ids: Sequence[str]) -> np.ndarray:
        rows = list(map(self._index.get, item_ids))
        if None in rows:  # unknown items: codes by first appearance
            code = self.code
            rows = [code(i) if row is None else row for i, row in zip(item_ids, rows, strict=True)]
        return np.array(rows, dtype=np.int64)

    def sessions(self, recent_items: Sequence[Sequence[str]]) -> np.ndarray:
        """The latest SESSION_LENGTH items of each request as codes, padded with -1."""
        sessions = np.full((len(recent_items), SESSION_LENGTH), -1, dtype=np.int64)
        for r, items in enumerate(recent_items):
            latest = list(items)[-SESSION_LENGTH:]
            sessions[r, : len(latest)] = [self.code(i) for i in latest]
        return sessions


def build_encoded_feature_matrix(
    snapshot: FeatureSnapshot,
    *,
    user_rows: np.ndarray,
    request_times: np.ndarray,
    row_request: np.ndarray,
    row_items: np.ndarray,
    sessions: np.ndarray,
) -> np.ndarray:
    """The feature computation itself, on integer codes (see `ItemCodes`).

    Per request r: user_rows[r] (the user's snapshot row, -1 if unknown), request_times[r] and
    sessions[r] (up to SESSION_LENGTH item codes, -1 padding). Per row: row_request and
    row_items (item code). Training encodes a whole window at once and calls this per day.
    """
    n_rows = len(row_items)
    row_request = np.asarray(row_request, dtype=np.int64)
    features = np.empty((n_rows, len(FEATURE_NAMES)), dtype=np.float32)
    if n_rows == 0:
        return features

    item = np.asarray(row_items, dtype=np.int64)
    n_items = len(snapshot.item_ids)
    known = item < n_items
    tables = _item_tables(snapshot)
    row = np.minimum(item, n_items)  # codes of unknown items -> the tables' last row
    category = tables.category[row]
    has_category = category >= 0
    safe_category = np.where(has_category, category, 0)
    stats = tables.stats[row]

    now = np.asarray(request_times, dtype=np.float64)[row_request]
    age_days = (now - stats[:, 0]) / SECONDS_PER_DAY
    features[:, 0] = np.where(known, np.maximum(age_days, 0.0), UNKNOWN_ITEM_AGE_DAYS)
    features[:, 1:4] = stats[:, 1:4]

    # Per request first (a request's rows share its user), then spread to the rows.
    request_user = np.asarray(user_rows, dtype=np.int64)
    request_known_user = request_user >= 0
    request_safe_user = np.where(request_known_user, request_user, 0)
    request_user_total = np.where(
        request_known_user, snapshot.user_click_totals[request_safe_user], 0.0
    )
    known_user = request_known_user[row_request]
    user_total = request_user_total[row_request]
    user_clicks = snapshot.user_category_clicks
    in_category = user_clicks[request_safe_user[row_request], safe_category]
    user_in_category = np.where(known_user, in_category, 0.0)
    share = snapshot.global_category_share[safe_category]
    alpha = AFFINITY_PRIOR_CLICKS
    affinity = (user_in_category + alpha * share) / (user_total + alpha)
    n_categories = len(snapshot.categories)
    features[:, 4] = np.where(has_category, affinity, 1.0 / max(n_categories, 1))
    features[:, 5] = np.log1p(request_user_total)[row_request]

    session_share = _session_category_share(snapshot, sessions)
    features[:, 6] = np.where(has_category, session_share[row_request, safe_category], 0.0)
    row_sessions = np.asarray(sessions)[row_request]
    features[:, 7] = np.logical_or.reduce(row_sessions == item[:, None], axis=1)
    return features


@dataclass(frozen=True)
class _ItemTables:
    """Per snapshot item (and one last row for items it does not know): the category (-1
    unknown) and the item's columns that do not depend on the request: published_at and
    features 1 to 3. Computed once per snapshot, so a request gathers rows instead of
    recomputing them."""

    category: np.ndarray
    stats: np.ndarray


_ITEM_TABLES: weakref.WeakKeyDictionary[FeatureSnapshot, _ItemTables] = weakref.WeakKeyDictionary()


def _item_tables(snapshot: FeatureSnapshot) -> _ItemTables:
    tables = _ITEM_TABLES.get(snapshot)
    if tables is None:
        tables = _ITEM_TABLES[snapshot] = _compute_item_tables(snapshot)
    return tables


def _compute_item_tables(snapshot: FeatureSnapshot) -> _ItemTables:
    # The unknown row has no traffic: the same formulas give its cold-start values.
    impressions = np.append(snapshot.item_impressions, 0.0)
    clicks = np.append(snapshot.item_clicks, 0.0)
    # Shares relative to the average item (1.0), not counts: counts grow with the window, so a
    # model trained on early days would not transfer to the full window serving uses.
    n_items = max(len(snapshot.item_ids), 1)
    total_impressions = max(snapshot.total_impressions, 1.0)
    total_clicks = max(snapshot.total_clicks, 1.0)
    prior = CTR_PRIOR_IMPRESSIONS
    stats = np.column_stack(
        [
            np.append(snapshot.item_published_at, 0.0),  # unused: unknown items' age is fixed
            impressions * n_items / total_impressions,
            (clicks + prior * snapshot.global_ctr) / (impressions + prior),
            clicks * n_items / total_clicks,
        ]
    )
    category = np.append(snapshot.item_category, -1).astype(np.int64)
    return _ItemTables(category=category, stats=stats)


def _session_category_share(snapshot: FeatureSnapshot, sessions: np.ndarray) -> np.ndarray:
    """The share of each category in each request's session (requests x categories); items the
    snapshot does not know count in the session's length but in no category."""
    n_requests = len(sessions)
    n_categories = len(snapshot.categories)
    in_session = sessions >= 0
    known = in_session & (sessions < len(snapshot.item_ids))
    request, slot = np.nonzero(known)
    cell = request * n_categories + snapshot.item_category[sessions[request, slot]]
    counts = np.bincount(cell, minlength=n_requests * n_categories)
    counts = counts.reshape(n_requests, n_categories)
    return counts / np.maximum(in_session.sum(axis=1), 1)[:, None]


def feature_spec() -> dict[str, Any]:
    """The feature specification logged with every model (`features/spec.json`)."""
    return {
        "feature_version": FEATURE_VERSION,
        "feature_names": list(FEATURE_NAMES),
        "dtype": "float32",
        "position_bias": "LightGBM unbiased lambdarank (Dataset position); no position feature",
        "session_length": SESSION_LENGTH,
        "cold_start": {
            "unknown_item": {
                "item_age_days": UNKNOWN_ITEM_AGE_DAYS,
                "item_impression_share": 0.0,
                "item_ctr": "snapshot.global_ctr, smoothed like a known item with 0 traffic",
                "item_click_share": 0.0,
                "user_category_affinity": "1 / number of categories",
                "recent_same_category": 0.0,
            },
            "unknown_user": {
                "user_category_affinity": "snapshot.global_category_share of the item's category",
                "user_log_clicks": 0.0,
            },
            "ctr_prior_impressions": CTR_PRIOR_IMPRESSIONS,
            "affinity_prior_clicks": AFFINITY_PRIOR_CLICKS,
        },
    }
