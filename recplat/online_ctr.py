"""Online click-through rate per serving variant, from the lake's impressions and feedback.

The unit is a ranking request (one ranked list shown to a user): a request is clicked if at
least one click event links to its `request_id`. Requests are independent trials, so the
Wilson score interval is a sound 95 % confidence interval for each variant's CTR (item-level
rows of one list are not independent). Feedback is deduplicated by `event_id` first, since
the service ships at least once. pyarrow only, no pandas, so the service side can import it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from ranking_features.events import FEEDBACK_DIR, IMPRESSIONS_DIR
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    impressions = read_events(
        lake_uri,
        IMPRESSIONS_DIR,
        ["request_id", "item_id", "variant", "model_version", "brand"],
        since,
    )
    if impressions is None or impressions.num_rows == 0:
        raise LakeReadError(f"{lake_uri}: no impressions under {IMPRESSIONS_DIR}/date=*/")
    feedback = read_events(
        lake_uri, FEEDBACK_DIR, ["event_id", "request_id", "item_id", "type", "brand"], since
    )
    if brand is not None:
        impressions = impressions.filter(pc.field("brand") == brand)
        if feedback is not None:
            feedback = feedback.filter(pc.field("brand") == brand)
    clicks = _unique_clicks(feedback)
    clicked_requests = pc.unique(clicks["request_id"])

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
            )
        )
    return results


def _unique_clicks(feedback: pa.Table | None) -> pa.Table:
    """Distinct (request_id, item_id) of click events, after dropping repeated event_ids."""
    empty = pa.table(
        {"request_id": pa.array([], pa.string()), "item_id": pa.array([], pa.string())}
    )
    if feedback is None or feedback.num_rows == 0:
        return empty
    clicks = feedback.filter((pc.field("type") == "click") & pc.field("request_id").is_valid())
    if clicks.num_rows == 0:
        return empty
    deduped = clicks.group_by("event_id").aggregate([("request_id", "min"), ("item_id", "min")])
    pairs = pa.table({"request_id": deduped["request_id_min"], "item_id": deduped["item_id_min"]})
    return pairs.group_by(["request_id", "item_id"]).aggregate([])
