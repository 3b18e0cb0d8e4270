"""The feature sample: a share of the items /rank returns, with the vector the model scored.

Each item a model returned is kept with probability `RECPLAT_FEATURE_SAMPLE` (the brand's
`monitoring.feature_sample`, default 0.01), drawn per item. Returned items, not every
candidate: the training distribution it is compared with (`ranking_features.drift`) is over
training rows, which are the items that were returned, so both sides count the same kind of
row. The fallback scores no features and samples nothing.

A kept item's vector is recomputed with the model's snapshot, the request's session and the
scoring time: the same inputs the batch was scored with, so the same numbers (one feature
function, `ranking_features.build_features`); only the kept items are recomputed, so a request
usually costs nothing. Records go into the event log's `features` segments, written and
shipped like impressions (`event_log`, `lake_shipper`), to `events/features/date=YYYY-MM-DD/`
with `ranking_features.drift.FEATURE_SAMPLE_SCHEMA`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from ranking_features.definition import FEATURE_NAMES, FEATURE_VERSION, build_features
from ranking_features.drift import FEATURE_SAMPLE_SCHEMA

from ranking_service.event_log import EventLog
from ranking_service.model_store import RankingModel

KIND = "features"
"""The event log's kind (its segment folder and the lake shipper's)."""

_COLUMNS = [field.name for field in FEATURE_SAMPLE_SCHEMA if field.name not in FEATURE_NAMES]


class FeatureSampler:
    """Draws the items to keep and appends their vectors to the event log."""

    def __init__(
        self, share: float, event_log: EventLog, brand: str, seed: int | None = None
    ) -> None:
        self.share = share
        self._event_log = event_log
        self._brand = brand
        # Its own stream: a seeded service replays its exploration draws whatever is sampled.
        self._rng = np.random.default_rng(None if seed is None else [seed, 1])

    def offer(
        self,
        model: RankingModel,
        variant: str,
        request_id: str,
        user_id: str,
        items: Sequence[str],
        recent_items: Sequence[str],
        now: float,
    ) -> int:
        """Keep each of `items` (in the order returned) with probability `share`; return how
        many were kept. `now` is the time the request was scored at (epoch seconds)."""
        if self.share <= 0 or not items:
            return 0
        kept = np.flatnonzero(self._rng.random(len(items)) < self.share)
        if len(kept) == 0:
            return 0
        chosen = [items[i] for i in kept.tolist()]
        vectors = build_features(model.snapshot, user_id, chosen, recent_items, now=now)
        ts = int(now * 1_000_000)
        records = [
            {
                "event_id": f"{request_id}:{position}",
                "request_id": request_id,
                "ts": ts,
                "user_id": user_id,
                "item_id": item_id,
                "position": position,
                "model_name": model.name,
                "model_version": model.version,
                "variant": variant,
                "brand": self._brand,
                "feature_version": FEATURE_VERSION,
                # float32 -> float is exact, and back to float32 in the lake.
                "features": vector,
            }
            for item_id, position, vector in zip(
                chosen, (kept + 1).tolist(), vectors.tolist(), strict=True
            )
        ]
        self._event_log.append(KIND, records, durable=False)
        return len(records)


def feature_sample_table(records: list[dict[str, Any]]) -> pa.Table:
    """The lake rows of a segment's sample records (one row per kept item); a record that does
    not fit the schema raises, and the shipper quarantines its segment."""
    columns: dict[str, Any] = {name: [r.get(name) for r in records] for name in _COLUMNS}
    columns["ts"] = pa.array(columns["ts"], pa.int64()).cast(FEATURE_SAMPLE_SCHEMA.field("ts").type)
    vectors = [r.get("features") for r in records]
    if any(not isinstance(v, list) or len(v) != len(FEATURE_NAMES) for v in vectors):
        raise ValueError(f"features: a list of {len(FEATURE_NAMES)} numbers in every record")
    matrix = np.array(vectors, dtype=np.float32).reshape(len(records), len(FEATURE_NAMES))
    for column, name in enumerate(FEATURE_NAMES):
        columns[name] = matrix[:, column]
    return pa.Table.from_pydict(columns, schema=FEATURE_SAMPLE_SCHEMA)
