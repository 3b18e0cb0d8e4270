"""Reading back what the ranking services shipped to a brand's lake.

The demo and the tests use it to wait, with a deadline, until acknowledged feedback has
left the services' local logs and landed in the lake, where training will read it.
Synthetic history files (`synthetic-*.parquet`) are not the services' and are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable


def shipped_event_ids(lake_uri: str, kind: str = "feedback") -> set[str]:
    """Event ids in every service-written parquet file under `events/<kind>/` of the lake."""
    import pyarrow.parquet as pq
    from ranking_features.lake import open_lake

    fs, root = open_lake(lake_uri)
    pattern = f"{root}/events/{kind}/date=*/*.parquet"
    found: set[str] = set()
    for path in fs.glob(pattern):
        name = str(path).rsplit("/", 1)[-1]
        if name.startswith("synthetic-"):
            continue
        with fs.open(path, "rb") as handle:
            found.update(pq.read_table(handle, columns=["event_id"]).column(0).to_pylist())
    return found


def missing_event_ids(lake_uri: str, expected: Iterable[str]) -> set[str]:
    """The ids in `expected` that are not in the lake yet."""
    return set(expected) - shipped_event_ids(lake_uri)


def ctr_by_variant(lake_uri: str) -> list[dict[str, object]]:
    """Clicks per impression for each variant and model version the services logged.

    An impression is one item in one served list; it counts as clicked when a click event
    names the same request and item (duplicates from at-least-once delivery count once).
    The interval is the 95% Wilson score interval.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from ranking_features.lake import open_lake

    fs, root = open_lake(lake_uri)

    def table(kind: str, columns: list[str]) -> pa.Table | None:
        parts = []
        for path in fs.glob(f"{root}/events/{kind}/date=*/*.parquet"):
            if str(path).rsplit("/", 1)[-1].startswith("synthetic-"):
                continue
            with fs.open(path, "rb") as handle:
                parts.append(pq.read_table(handle, columns=columns))
        return pa.concat_tables(parts) if parts else None

    impressions = table("impressions", ["request_id", "item_id", "variant", "model_version"])
    feedback = table("feedback", ["request_id", "item_id", "type"])
    if impressions is None:
        return []
    clicked: set[tuple[str, str]] = set()
    if feedback is not None:
        for request_id, item_id, kind in zip(
            *(feedback.column(c).to_pylist() for c in ("request_id", "item_id", "type")),
            strict=True,
        ):
            if kind == "click" and request_id is not None:
                clicked.add((request_id, item_id))
    counts: dict[tuple[str, str], list[int]] = {}
    seen: set[tuple[str, str]] = set()
    columns = ("request_id", "item_id", "variant", "model_version")
    for request_id, item_id, variant, version in zip(
        *(impressions.column(c).to_pylist() for c in columns), strict=True
    ):
        if (request_id, item_id) in seen:
            continue
        seen.add((request_id, item_id))
        tally = counts.setdefault((variant, str(version)), [0, 0])
        tally[0] += 1
        tally[1] += (request_id, item_id) in clicked
    rows: list[dict[str, object]] = []
    for (variant, version), (shown, clicks) in sorted(counts.items()):
        low, high = wilson_interval(clicks, shown)
        rows.append(
            {
                "variant": variant,
                "model_version": version,
                "impressions": shown,
                "clicks": clicks,
                "ctr": clicks / shown,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return rows


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default)."""
    if trials == 0:
        return 0.0, 0.0
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * ((share * (1 - share) / trials + z * z / (4 * trials * trials)) ** 0.5) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
