"""The promotion gate's evidence: the gate window's explore requests, and where each target
policy puts the items they showed.

`exploration_slice` reads the explore impressions of the gate window from the lake, with their
matched feedback, into an `ExplorationLog` and each request's pool (the model's top m the
service shuffled). `pool_features` computes the features serving would have had for every pool
item, `target_positions` ranks each pool with a target policy and `as_served` takes the
champion as it served. `ranking_training.gate` estimates and decides on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from ranking_features.events import CLICK, CONVERSION

from ranking_training.data import LakeData
from ranking_training.exploration_log import (
    ExplorationLog,
    align_positions,
    positions_from_scores,
)
from ranking_training.features import EncodedEvents

Scorer = Callable[[np.ndarray], np.ndarray]
"""A target policy: scores of feature rows (rows x FEATURE_NAMES), higher ranks first."""


@dataclass(frozen=True, eq=False)
class ExplorationSlice:
    """The explore requests of the gate window: the log, and each request's pool."""

    log: ExplorationLog
    # Per request (in the log's request codes): user id, time and pool (item ids, model order).
    request_user_ids: np.ndarray
    request_ts: np.ndarray
    pools: list[np.ndarray]
    k: int
    # Explore requests left out: no propensity in (0, 1], no pool, or a shown item not in it.
    unusable_requests: int
    # Per request: the registry version that ranked it (None when the lake has no version).
    request_model_versions: np.ndarray | None = None

    @property
    def n_requests(self) -> int:
        return self.log.n_requests


def exploration_slice(data: LakeData, start: float, end: float) -> ExplorationSlice | None:
    """The explore impressions with start <= ts < end as an `ExplorationLog`, each row's reward
    from matched feedback (a conversion counts as a click too); None when there are none."""
    rows = data.impressions
    explore = rows[(rows["policy"] == "explore") & (rows["ts"] >= start) & (rows["ts"] < end)]
    if explore.empty:
        return None
    explore = explore.assign(
        request_id=explore["request_id"].astype(str), item_id=explore["item_id"].astype(str)
    )
    usable = _usable_requests(explore)
    unusable = int((~usable).sum())
    explore = explore[explore["request_id"].map(usable).to_numpy(bool)]
    if explore.empty:
        return None
    feedback = data.feedback.dropna(subset=["request_id"])
    key = ["request_id", "item_id"]
    converted = _pairs(feedback[feedback["type"] == CONVERSION], key)
    clicked = _pairs(feedback[feedback["type"] == CLICK], key).union(converted)
    explore = explore.sort_values(["ts", "request_id", "position"], kind="stable")
    pairs = pd.MultiIndex.from_frame(explore[key])
    log = ExplorationLog.from_table(
        explore.assign(
            clicked=pairs.isin(clicked).astype(np.float64),
            converted=pairs.isin(converted).astype(np.float64),
        )
    )
    first = explore.drop_duplicates("request_id").set_index("request_id")
    assert log.request_ids is not None
    first = first.loc[log.request_ids]
    return ExplorationSlice(
        log=log,
        request_user_ids=first["user_id"].to_numpy(),
        request_ts=first["ts"].to_numpy(np.float64),
        pools=[np.asarray(pool, dtype=object) for pool in first["pool"]],
        k=int(log.position.max()),
        unusable_requests=unusable,
        request_model_versions=(
            first["model_version"].astype(object).to_numpy() if "model_version" in first else None
        ),
    )


def _usable_requests(explore: pd.DataFrame) -> pd.Series:
    """Per request_id: whether every row has a propensity in (0, 1] and an item of the
    request's pool (the estimators need both)."""
    in_pool = np.array(
        [
            pool is not None and item in set(pool)
            for item, pool in zip(explore["item_id"], explore["pool"], strict=True)
        ],
        dtype=bool,
    )
    valid = explore["propensity"].between(0, 1, inclusive="right") & in_pool
    return valid.groupby(explore["request_id"], sort=False).all()


def _pairs(feedback: pd.DataFrame, key: list[str]) -> pd.MultiIndex:
    return pd.MultiIndex.from_frame(feedback[key].astype(str))


@dataclass(frozen=True, eq=False)
class PoolFeatures:
    """Every (explore request, pool item) row with the features serving would compute."""

    features: np.ndarray
    row_request: np.ndarray  # the log's request code
    row_item: np.ndarray  # the log's item code, -1 for pool items never shown
    row_item_ids: np.ndarray


def pool_features(
    exploration: ExplorationSlice, encoded: EncodedEvents, window_start: float
) -> PoolFeatures:
    """Features of each explore request's pool items, point in time as in training."""
    order = np.argsort(exploration.request_ts, kind="stable")
    sizes = np.array([len(exploration.pools[r]) for r in order], dtype=np.int64)
    row_request = np.repeat(order, sizes)
    # Each pool in item id order, not the logged (model) order: ties in score are broken by row
    # order, and the model's order would hand every tied target the logging policy's ranking
    # (as `build_training_matrix` orders a request's rows, for the same reason).
    items = (
        np.concatenate([np.sort(exploration.pools[r]) for r in order])
        if len(order)
        else np.array([], dtype=object)
    )
    features = encoded.features(
        window_start,
        users=encoded.user_rows(exploration.request_user_ids[order]),
        times=exploration.request_ts[order],
        row_request=np.repeat(np.arange(len(order)), sizes),
        row_items=encoded.item_codes(items),
    )
    log = exploration.log
    assert log.item_ids is not None
    row_item = pd.Index(log.item_ids).get_indexer(pd.Index(items))
    return PoolFeatures(features, row_request, row_item.astype(np.int64), items)


def target_positions(
    exploration: ExplorationSlice, pool: PoolFeatures, scorer: Scorer
) -> np.ndarray:
    """Per log row: the 1-based position the target gives the shown item when it ranks the
    request's pool, 0 when it is outside the target's ranking."""
    scores = np.asarray(scorer(pool.features), dtype=np.float64)
    ranks = positions_from_scores(pool.row_request, scores)
    shown = pool.row_item >= 0
    return align_positions(
        exploration.log, pool.row_request[shown], pool.row_item[shown], ranks[shown]
    )


def as_served(exploration: ExplorationSlice, version: str, rescored: np.ndarray) -> np.ndarray:
    """The champion's positions per log row: on the explore requests its own `version` ranked,
    the shown item's place in the first k of the logged pool, which is the champion's order as
    it served (its frozen snapshot, the client's session, its tie-break); elsewhere `rescored`,
    its ranking of the pool recomputed with the training features (`target_positions`).

    Rescoring alone would judge a champion the service never ran: serving scores with the
    snapshot of the champion's own training run, the gate with the snapshot of each request's
    day, so the two orders drift apart as the champion ages (and differ on unknown items)."""
    versions = exploration.request_model_versions
    if versions is None:
        return rescored
    log = exploration.log
    assert log.item_ids is not None
    own = np.flatnonzero(versions[log.request] == version)
    positions = np.array(rescored, dtype=np.int64, copy=True)
    for row in own:
        top = exploration.pools[log.request[row]][: exploration.k]
        match = np.flatnonzero(top == log.item_ids[log.item[row]])
        positions[row] = match[0] + 1 if len(match) else 0
    return positions
