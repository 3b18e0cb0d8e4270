"""Ways to corrupt a copy of the training tests' synthetic lake, each with the message
`ranking-train` must stop with (`CORRUPTIONS`); the in-process and the Dask job tests use them.
Each function corrupts the lake at `lake` and returns the path it broke."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DAY = "date=2025-01-25"


def _first_file(lake: Path, events: str, day: str = DAY) -> Path:
    return sorted((lake / "events" / events / day).glob("*.parquet"))[0]


def _rewrite(path: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def drop_column(lake: Path) -> Path:
    path = _first_file(lake, "impressions")
    _rewrite(path, lambda t: t.drop_columns(["user_id"]))
    return path


def position_as_text(lake: Path) -> Path:
    path = _first_file(lake, "impressions")
    _rewrite(path, lambda t: t.set_column(5, "position", pc.cast(t["position"], pa.string())))
    return path


def null_request_id(lake: Path) -> Path:
    path = _first_file(lake, "impressions")
    ids = t_ids = pq.read_table(path)["request_id"].to_pylist()
    t_ids[0] = None
    _rewrite(path, lambda t: t.set_column(1, pa.field("request_id", pa.string()), pa.array(ids)))
    return path


def not_parquet(lake: Path) -> Path:
    path = _first_file(lake, "feedback")
    path.write_bytes(b"this is not parquet")
    return path


def unknown_feedback_type(lake: Path) -> Path:
    path = _first_file(lake, "feedback")
    _rewrite(path, lambda t: t.set_column(5, "type", pa.array(["like"] * t.num_rows)))
    return path


def impressions_outside_partition(lake: Path) -> Path:
    path = _first_file(lake, "impressions")
    shifted = lambda t: t.set_column(  # noqa: E731
        2, "ts", pc.add(t["ts"], pa.scalar(40 * 86_400_000_000, pa.duration("us")))
    )
    _rewrite(path, shifted)
    return path


def item_twice_in_a_request(lake: Path) -> Path:
    path = _first_file(lake, "impressions")

    def repeat(table: pa.Table) -> pa.Table:
        items = table["item_id"].to_pylist()
        items[1] = items[0]
        return table.set_column(4, "item_id", pa.array(items))

    _rewrite(path, repeat)
    return path


def zero_position(lake: Path) -> Path:
    path = _first_file(lake, "impressions")
    _rewrite(path, lambda t: t.set_column(5, "position", pc.subtract(t["position"], 1)))
    return path


def duplicate_catalog_items(lake: Path) -> Path:
    path = lake / "catalog" / "items.parquet"
    _rewrite(path, lambda t: pa.concat_tables([t, t.slice(0, 3)]))
    return path


def missing_catalog(lake: Path) -> Path:
    path = lake / "catalog" / "items.parquet"
    path.unlink()
    return path


def no_feedback(lake: Path) -> Path:
    path = lake / "events" / "feedback"
    for file in path.rglob("*.parquet"):
        file.unlink()
    return path


CORRUPTIONS: dict[Callable[[Path], Path], str] = {
    drop_column: "column 'user_id' is missing; expected string",
    position_as_text: "column 'position' has type string; expected int32",
    null_request_id: "column 'request_id' has 1 null values; it is required",
    not_parquet: "not a readable parquet file",
    unknown_feedback_type: "column 'type' has unknown values ['like']",
    impressions_outside_partition: "column 'ts' has",
    item_twice_in_a_request: "column 'item_id' repeats within request",
    zero_position: "column 'position' has values below 1; positions are 1-based",
    duplicate_catalog_items: "column 'item_id' has 3 duplicate ids",
    missing_catalog: "the item catalog is missing",
    no_feedback: "feedback: no click or conversion links to any impression",
}
