"""Online click-through rate per serving variant, from the lake's impressions and feedback.

The unit is a ranking request (one ranked list shown to a user): a request is clicked if at
least one click event links to its `request_id`. Requests are independent trials, so the
Wilson score interval is a sound 95 % confidence interval for each variant's CTR (item-level
rows of one list are not independent). Feedback follows the lake's feedback rules
(`ranking_features.events`, docs/architecture.md): retries of one event count once (the
service ships at least once), and feedback counts only when its request_id, user_id and
item_id match an impression; the rest is counted as unmatched and ignored, so a client cannot
click on another user's list, or on an item a list never showed, to move a variant's CTR.
pyarrow only, no pandas, so the service side can import it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from ranking_features.events import (
    FEEDBACK_DEDUPE_KEYS,
    FEEDBACK_DIR,
    IMPRESSIONS_DIR,
    first_of_each_event,
    matches_an_impression,
)
from ranking_features.lake import open_lake

Z_95 = 1.959963984540054


class LakeReadError(ValueError):
    """The lake has no usable events; the message says where it looked."""


@dataclass(frozen=True)
class VariantCtr:
    variant: str
    model_versions: str
    requests: int
    clicked_requests: int
    ctr: float
    ci_low: float
    ci_high: float
    impressions: int
    clicks: int
    # Feedback naming one of this variant's requests but another user or an unshown item.
    unmatched_feedback: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CtrReport:
    """CTR per variant, and the feedback events left out because they match no impression
    (including those naming no request that was served)."""

    variants: list[VariantCtr]
    unmatched_feedback: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "variants": [v.to_dict() for v in self.variants],
            "unmatched_feedback": self.unmatched_feedback,
        }


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (0, 0 with no trials)."""
    if trials <= 0:
        return 0.0, 0.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def read_events(
    lake_uri: str, events_dir: str, columns: list[str], since: date | None = None
) -> pa.Table | None:
    """The `columns` of every parquet file under `events_dir` (days >= since), or None."""
    fs, root = open_lake(lake_uri)
    pattern = f"{root}/{events_dir}/date=*/*.parquet"
    paths = sorted(fs.glob(pattern))
    if since is not None:
        paths = [p for p in paths if _partition_day(p) >= since.isoformat()]
    if not paths:
        return None
    return ds.dataset(paths, filesystem=fs, format="parquet").to_table(columns=columns)


def _partition_day(path: str) -> str:
    for part in path.split("/"):
        if part.startswith("date="):
            return part.removeprefix("date=")
    return ""


def online_ctr(
    lake_uri: str, brand: str | None = None, since: date | None = None
) -> list[VariantCtr]:
    """CTR per variant over the lake's events (optionally one brand, days >= since)."""
    return online_ctr_report(lake_uri, brand, since).variants


def online_ctr_report(
    lake_uri: str, brand: str | None = None, since: date | None = None
) -> CtrReport:
    """CTR per variant and the unmatched feedback count (optionally one brand, days >= since)."""
    impressions = read_events(
        lake_uri,
        IMPRESSIONS_DIR,
        ["request_id", "user_id", "item_id", "variant", "model_version", "brand"],
        since,
    )
    if impressions is None or impressions.num_rows == 0:
        raise LakeReadError(f"{lake_uri}: no impressions under {IMPRESSIONS_DIR}/date=*/")
    feedback = read_events(lake_uri, FEEDBACK_DIR, [*FEEDBACK_DEDUPE_KEYS, "brand"], since)
    if brand is not None:
        impressions = impressions.filter(pc.field("brand") == brand)
        if feedback is not None:
            feedback = feedback.filter(pc.field("brand") == brand)
    matched, unmatched = _split_feedback(feedback, impressions)
    clicks = _unique_clicks(matched)
    clicked_requests = pc.unique(clicks["request_id"])
    unmatched_requests = unmatched["request_id"]

    results = []
    for variant in sorted(pc.unique(impressions["variant"]).to_pylist()):
        rows = impressions.filter(pc.field("variant") == variant)
        requests = pc.unique(rows["request_id"])
        clicked = int(pc.sum(pc.is_in(requests, value_set=clicked_requests)).as_py() or 0)
        shown = pa.table({"request_id": rows["request_id"], "item_id": rows["item_id"]})
        item_clicks = shown.join(clicks, ["request_id", "item_id"], join_type="inner")
        versions = sorted(v for v in pc.unique(rows["model_version"]).to_pylist() if v)
        low, high = wilson_interval(clicked, len(requests))
        results.append(
            VariantCtr(
                variant=variant,
                model_versions=",".join(versions) or "-",
                requests=len(requests),
                clicked_requests=clicked,
                ctr=clicked / len(requests) if len(requests) else 0.0,
                ci_low=low,
                ci_high=high,
                impressions=rows.num_rows,
                clicks=item_clicks.num_rows,
                unmatched_feedback=int(
                    pc.sum(pc.is_in(unmatched_requests, value_set=requests)).as_py() or 0
                ),
            )
        )
    return CtrReport(results, unmatched.num_rows)


def _split_feedback(feedback: pa.Table | None, impressions: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Distinct feedback events (retries dropped) that match an impression, and those that
    carry a request_id but match none. Feedback without a request_id is in neither: it never
    claimed to be about a ranked list."""
    if feedback is None:
        empty = pa.table({name: pa.array([], pa.string()) for name in FEEDBACK_DEDUPE_KEYS})
        return empty, empty
    events = feedback.filter(pa.array(first_of_each_event(feedback)))
    matched = matches_an_impression(events, impressions)
    linked = events["request_id"].is_valid().to_numpy(zero_copy_only=False)
    return events.filter(pa.array(matched)), events.filter(pa.array(linked & ~matched))


def _unique_clicks(feedback: pa.Table) -> pa.Table:
    """Distinct (request_id, item_id) of the click events."""
    clicks = feedback.filter(pc.field("type") == "click")
    pairs = pa.table({"request_id": clicks["request_id"], "item_id": clicks["item_id"]})
    return pairs.group_by(["request_id", "item_id"]).aggregate([])
