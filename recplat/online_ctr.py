"""Online click-through rate per model version and variant, from the lake's events.

The unit is a ranking request (one ranked list shown to a user): a request is clicked if at
least one click event links to its `request_id`. Rows are per (model version, variant), so a
champion row never mixes two models (the champion alias moves during a demo), and a version
that served as challenger and later as champion shows both. Traffic is split per user, and one
user's requests are correlated, so the 95 % interval is user-clustered: the delta method on the
ratio of per-user sums (`ranking_features.statistics.clustered_ratio`, the evaluator's
definition too), not a binomial interval over requests. Feedback follows the lake's feedback
rules (`ranking_features.events`, docs/architecture.md): retries of one event count once (the
service ships at least once), and feedback counts only when its request_id, user_id and
item_id match an impression; the rest is counted as unmatched and ignored, so a client cannot
click on another user's list, or on an item a list never showed, to move a version's CTR.
pyarrow and numpy only, no pandas.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from ranking_features.events import (
    CLICK,
    FEEDBACK_DEDUPE_KEYS,
    FEEDBACK_DIR,
    IMPRESSIONS_DIR,
    first_of_each_event,
    matches_an_impression,
    partition_dir,
    partition_glob,
)
from ranking_features.lake import open_lake
from ranking_features.statistics import clustered_ratio


class LakeReadError(ValueError):
    """The lake has no usable events; the message says where it looked."""


@dataclass(frozen=True)
class VersionCtr:
    """CTR of one model version in one variant ("-" for the fallback, which has no version)."""

    model_version: str
    variant: str
    users: int
    requests: int
    clicked_requests: int
    ctr: float
    # The user-clustered 95 % interval of the CTR.
    ci_low: float
    ci_high: float
    impressions: int
    clicks: int
    # Feedback naming one of these requests but another user or an unshown item.
    unmatched_feedback: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CtrReport:
    """CTR per model version and variant, and the feedback events left out because they match
    no impression (including those naming no request that was served)."""

    rows: list[VersionCtr]
    unmatched_feedback: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [row.to_dict() for row in self.rows],
            "unmatched_feedback": self.unmatched_feedback,
        }


def read_events(
    lake_uri: str, events_dir: str, columns: list[str], since: date | None = None
) -> pa.Table | None:
    """The `columns` of every parquet file under `events_dir` (days >= since), or None."""
    fs, root = open_lake(lake_uri)
    pattern = f"{root}/{partition_glob(events_dir)}"
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


VARIANT_ORDER = {"champion": 0, "challenger": 1, "fallback": 2}
NO_VERSION = "-"


def online_ctr(
    lake_uri: str, brand: str | None = None, since: date | None = None
) -> list[VersionCtr]:
    """CTR per model version and variant over the lake's events (optionally one brand, days >=
    since)."""
    return online_ctr_report(lake_uri, brand, since).rows


def online_ctr_report(
    lake_uri: str, brand: str | None = None, since: date | None = None
) -> CtrReport:
    """CTR per model version and variant and the unmatched feedback count (optionally one
    brand, days >= since)."""
    impressions = read_events(
        lake_uri,
        IMPRESSIONS_DIR,
        ["request_id", "user_id", "item_id", "variant", "model_version", "brand"],
        since,
    )
    if impressions is None or impressions.num_rows == 0:
        raise LakeReadError(
            f"{lake_uri}: no impressions under {partition_dir(IMPRESSIONS_DIR, '*')}/"
        )
    feedback = read_events(lake_uri, FEEDBACK_DIR, [*FEEDBACK_DEDUPE_KEYS, "brand"], since)
    if brand is not None:
        impressions = impressions.filter(pc.field("brand") == brand)
        if feedback is not None:
            feedback = feedback.filter(pc.field("brand") == brand)
    impressions = impressions.set_column(
        impressions.column_names.index("model_version"),
        "model_version",
        pc.fill_null(impressions["model_version"], NO_VERSION),
    )
    matched, unmatched = _split_feedback(feedback, impressions)
    clicks = _unique_clicks(matched)
    requests = _requests(impressions, pc.unique(clicks["request_id"]))

    groups = requests.group_by(["model_version", "variant"]).aggregate([]).to_pylist()
    results = [
        _version_ctr(group, requests, impressions, clicks, unmatched)
        for group in sorted(groups, key=_row_order)
    ]
    return CtrReport(results, unmatched.num_rows)


def _version_ctr(
    group: dict[str, str],
    requests: pa.Table,
    impressions: pa.Table,
    clicks: pa.Table,
    unmatched: pa.Table,
) -> VersionCtr:
    """One (model version, variant) row: its requests' CTR with a user-clustered interval,
    its impressions and item clicks, and the unmatched feedback naming its requests."""
    version, variant = group["model_version"], group["variant"]
    mine = (pc.field("model_version") == version) & (pc.field("variant") == variant)
    rows = requests.filter(mine)
    shown = impressions.filter(mine)
    per_user = rows.group_by("user_id").aggregate([("request_id", "count"), ("clicked", "sum")])
    ctr = clustered_ratio(
        per_user["clicked_sum"].to_numpy(), per_user["request_id_count"].to_numpy()
    )
    low, high = ctr.interval()
    pairs = pa.table({"request_id": shown["request_id"], "item_id": shown["item_id"]})
    item_clicks = pairs.join(clicks, ["request_id", "item_id"], join_type="inner")
    return VersionCtr(
        model_version=version,
        variant=variant,
        users=per_user.num_rows,
        requests=rows.num_rows,
        clicked_requests=round(ctr.numerator),
        ctr=ctr.estimate,
        ci_low=low,
        ci_high=high,
        impressions=shown.num_rows,
        clicks=item_clicks.num_rows,
        unmatched_feedback=int(
            pc.sum(pc.is_in(unmatched["request_id"], value_set=rows["request_id"])).as_py() or 0
        ),
    )


def _row_order(group: dict[str, str]) -> tuple[int, int, str]:
    """Variants in serving order, then versions in numeric order (v10 after v9)."""
    version = group["model_version"]
    number = int(version) if version.isdigit() else -1
    return VARIANT_ORDER.get(group["variant"], 3), number, version


def _requests(impressions: pa.Table, clicked_requests: pa.Array) -> pa.Table:
    """One row per request: its user, variant and model version, and whether it was clicked."""
    requests = impressions.group_by("request_id").aggregate(
        [("user_id", "min"), ("variant", "min"), ("model_version", "min")]
    )
    requests = pa.table(
        {
            "request_id": requests["request_id"],
            "user_id": requests["user_id_min"],
            "variant": requests["variant_min"],
            "model_version": requests["model_version_min"],
        }
    )
    clicked = pc.cast(pc.is_in(requests["request_id"], value_set=clicked_requests), pa.int64())
    return requests.append_column("clicked", clicked)


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
    clicks = feedback.filter(pc.field("type") == CLICK)
    pairs = pa.table({"request_id": clicks["request_id"], "item_id": clicks["item_id"]})
    return pairs.group_by(["request_id", "item_id"]).aggregate([])


def online_ctr_rows(lake_uri: str, since: date) -> list[dict[str, object]]:
    """`online_ctr` from the days >= `since` as rows of plain values; none when the lake cannot
    be read. The demo passes its own day: the synthetic history before it was served by a
    popularity policy, not by a registered model, so only the model variants' rows count."""
    try:
        return [row.to_dict() for row in online_ctr(lake_uri, since=since)]
    except LakeReadError:
        return []
