"""The synthetic history as the lake's tables: impressions, feedback and catalog, in the
schemas of `ranking_features.events` (docs/architecture.md, "Contracts").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from ranking_features.events import POLICY_EXPLOIT, POLICY_EXPLORE

from recplat.synthetic.ground_truth import GroundTruth
from recplat.synthetic.logging_policies import Served

if TYPE_CHECKING:
    import pyarrow as pa


def impressions_and_catalog(
    truth: GroundTruth, request_ids: list[str], served: Served
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
            "ts": timestamps(np.repeat(served.request_ts, list_size)),
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
            "published_at": timestamps(truth.item_published_at),
            "title": [f"Item {i}" for i in range(params.items)],
        },
        schema=CATALOG_SCHEMA,
    )
    return impressions, catalog


def feedback_table(
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
                "ts": timestamps(rows["ts"]),
                "brand": np.full(len(by_time), truth.params.brand, dtype=object),
            }
        )
        .select(FEEDBACK_SCHEMA.names)
        .cast(FEEDBACK_SCHEMA)
    )


def timestamps(epoch_seconds: np.ndarray) -> np.ndarray:
    return (np.asarray(epoch_seconds) * 1_000_000).astype("datetime64[us]")
