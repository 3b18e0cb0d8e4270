"""The parquet schemas of the lake's events and catalog: the contract between service and training.

The service writes impressions and feedback with exactly these schemas; the training job and
the synthetic generator read and write them. Timestamps are UTC microseconds. Layout of the
files in the lake (DESIGN.md):

    events/impressions/date=YYYY-MM-DD/*.parquet   IMPRESSION_SCHEMA
    events/feedback/date=YYYY-MM-DD/*.parquet      FEEDBACK_SCHEMA
    catalog/items.parquet                          CATALOG_SCHEMA

One impression row is one item shown in one ranked list: a request with 20 candidates writes
20 rows sharing `request_id`, with `position` 1..20 in the order served.
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")

IMPRESSION_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("ts", TIMESTAMP, nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        # 1-based rank at which the item was served.
        pa.field("position", pa.int32(), nullable=False),
        pa.field("score", pa.float64()),
        pa.field("model_name", pa.string()),
        pa.field("model_version", pa.string()),
        # "champion", "challenger" or "fallback".
        pa.field("variant", pa.string(), nullable=False),
        pa.field("brand", pa.string(), nullable=False),
    ]
)

FEEDBACK_TYPES = ("click", "conversion", "dismiss")

FEEDBACK_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        # Null when the client could not link the event to a ranking.
        pa.field("request_id", pa.string()),
        pa.field("ts", TIMESTAMP, nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        # One of FEEDBACK_TYPES.
        pa.field("type", pa.string(), nullable=False),
        pa.field("brand", pa.string()),
    ]
)

CATALOG_SCHEMA = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("published_at", TIMESTAMP, nullable=False),
        pa.field("title", pa.string()),
    ]
)

IMPRESSIONS_DIR = "events/impressions"
FEEDBACK_DIR = "events/feedback"
CATALOG_PATH = "catalog/items.parquet"


def partition_dir(events_dir: str, day: str) -> str:
    """The lake folder of one day's events, e.g. `events/feedback/date=2025-01-31`."""
    return f"{events_dir}/date={day}"
