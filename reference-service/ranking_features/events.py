"""The parquet schemas of the lake's events and catalog: the contract between service and training.

The service writes impressions and feedback with exactly these schemas; the training job and
the synthetic generator read and write them. Timestamps are UTC microseconds. Layout of the
files in the lake (docs/architecture.md, "Contracts"):

    events/impressions/date=YYYY-MM-DD/*.parquet   IMPRESSION_SCHEMA
    events/feedback/date=YYYY-MM-DD/*.parquet      FEEDBACK_SCHEMA
    events/errors/date=YYYY-MM-DD/*.parquet        RANK_ERROR_SCHEMA
    catalog/items.parquet                          CATALOG_SCHEMA

One impression row is one item shown in one ranked list: a request with 20 candidates writes
20 rows sharing `request_id`, with `position` 1..20 in the order served.

The rules for reading feedback back (docs/architecture.md, "Feedback rules") are here too, so
online CTR and training labels apply the same ones: `first_of_each_event` (dedupe) and
`matches_an_impression` (the join).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
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
        # How the list was made (docs/architecture.md, "Impressions and exploration"):
        # POLICY_EXPLOIT (the model's order) or POLICY_EXPLORE (a uniformly random
        # permutation of the model's top `len(pool)`, cut to k).
        pa.field("policy", pa.string()),
        # P(this item at this position | the request's policy): 1/len(pool) when exploring,
        # 1.0 when exploiting. Null in events written before propensities were logged.
        pa.field("propensity", pa.float64()),
        # Explore requests only: the pool the permutation drew from, in the model's order
        # (the same list on every row of the request); null otherwise.
        pa.field("pool", pa.list_(pa.string())),
        # The online experiment the request was part of (issue 15); null when none ran.
        pa.field("experiment_id", pa.string()),
    ]
)

# One row per /rank request that failed after the service chose its arm (an answer 500): the
# online experiment's error-ratio guardrail counts them per arm (docs/architecture.md, "Online
# experiments"). Requests refused before that (auth, validation) are not in any arm.
RANK_ERROR_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("ts", TIMESTAMP, nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("variant", pa.string(), nullable=False),
        pa.field("model_version", pa.string()),
        pa.field("brand", pa.string(), nullable=False),
        pa.field("experiment_id", pa.string()),
        # The exception's class name; the message and traceback stay in the service log.
        pa.field("error", pa.string(), nullable=False),
    ]
)

POLICY_EXPLOIT = "exploit"
POLICY_EXPLORE = "explore"
EXPLORATION_POOL_FACTOR = 2
"""An explore request permutes the model's top `EXPLORATION_POOL_FACTOR * k` candidates."""

CLICK = "click"
CONVERSION = "conversion"
"""A conversion counts as a click too (docs/architecture.md, "Promotion gate")."""
DISMISS = "dismiss"
FEEDBACK_TYPES = (CLICK, CONVERSION, DISMISS)
"""The feedback `type`s (`FEEDBACK_SCHEMA`); `POST /feedback` accepts these and no other."""
FeedbackType = Literal["click", "conversion", "dismiss"]
"""`FEEDBACK_TYPES` as a type (a Literal must spell them; a test keeps the two equal)."""

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

# The lake layout (docs/architecture.md, "Contracts"): every path into a brand's lake is built
# from these.
EVENTS_DIR = "events"
"""The prefix of everything the service ships (the lifecycle rules age it out)."""
IMPRESSIONS_DIR = f"{EVENTS_DIR}/impressions"
FEEDBACK_DIR = f"{EVENTS_DIR}/feedback"
ERRORS_DIR = f"{EVENTS_DIR}/errors"
FEATURES_DIR = f"{EVENTS_DIR}/features"
"""Where the service ships its feature sample (`ranking_features.drift`)."""
CATALOG_DIR = "catalog"
CATALOG_PATH = f"{CATALOG_DIR}/items.parquet"


def partition_dir(events_dir: str, day: str) -> str:
    """The lake folder of one day's events, e.g. `events/feedback/date=2025-01-31`."""
    return f"{events_dir}/date={day}"


def partition_glob(events_dir: str) -> str:
    """Every day's parquet files of one kind of event, e.g. `events/feedback/date=*/*.parquet`."""
    return f"{partition_dir(events_dir, '*')}/*.parquet"


# The columns that link feedback to the impression it is about. The service accepts feedback
# without checking them (after a restart it cannot know every impression), so readers do:
# feedback counts only when one impression has all three.
FEEDBACK_MATCH_KEYS = ("request_id", "user_id", "item_id")
# A retried event repeats all of these. The client picks `event_id`, so deduplicating on it
# alone would let one event (or another user's client reusing the id) suppress another.
FEEDBACK_DEDUPE_KEYS = ("event_id", "type", *FEEDBACK_MATCH_KEYS)


def first_of_each_event(feedback: pa.Table) -> np.ndarray:
    """A mask of `feedback` rows keeping the first row of each event (FEEDBACK_DEDUPE_KEYS):
    retries of one event count once, distinct events sharing an event_id each count."""
    keep = np.zeros(feedback.num_rows, dtype=bool)
    if feedback.num_rows:
        rows = feedback.select(FEEDBACK_DEDUPE_KEYS).append_column(
            "_row", pa.array(np.arange(feedback.num_rows))
        )
        first = rows.group_by(FEEDBACK_DEDUPE_KEYS, use_threads=False).aggregate([("_row", "min")])
        keep[first["_row_min"].to_numpy()] = True
    return keep


def matches_an_impression(feedback: pa.Table, impressions: pa.Table) -> np.ndarray:
    """A mask of `feedback` rows whose request_id, user_id and item_id are one impression's
    (rows without a request_id never match). Both tables need plain string key columns."""
    matched = np.zeros(feedback.num_rows, dtype=bool)
    if feedback.num_rows and impressions.num_rows:
        rows = feedback.select(FEEDBACK_MATCH_KEYS).append_column(
            "_row", pa.array(np.arange(feedback.num_rows))
        )
        # A right semi join builds its hash table on the (smaller) feedback side.
        found = impressions.select(FEEDBACK_MATCH_KEYS).join(
            rows, list(FEEDBACK_MATCH_KEYS), join_type="right semi"
        )
        matched[found["_row"].to_numpy()] = True
    return matched
