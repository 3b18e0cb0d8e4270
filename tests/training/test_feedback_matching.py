"""Feedback becomes a training label only when it matches the impression it names, and a
client-chosen event_id cannot make one event suppress another (docs/architecture.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ranking_features.events import FEEDBACK_SCHEMA
from ranking_training.data import LakeData, load_lake
from ranking_training.features import build_training_matrix, label_impressions

from tests.training.lake_window import END, FIRST

pytestmark = pytest.mark.fast


def _add_feedback(lake: Path, rows: list[dict[str, object]]) -> None:
    """Write extra feedback events into their day's partition, as a service would."""
    by_day: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        ts = datetime.fromtimestamp(float(row["ts"]), UTC)  # type: ignore[arg-type]
        by_day.setdefault(ts.date().isoformat(), []).append({**row, "ts": ts, "brand": "lake"})
    for day, day_rows in by_day.items():
        table = pa.Table.from_pylist(day_rows, schema=FEEDBACK_SCHEMA)
        pq.write_table(table, lake / "events" / "feedback" / f"date={day}" / "zz-extra.parquet")


def _label(data: LakeData, request_id: str, item_id: str) -> int:
    labels = pd.Series(
        label_impressions(data),
        index=pd.MultiIndex.from_frame(data.impressions[["request_id", "item_id"]].astype(str)),
    )
    return int(labels[(request_id, item_id)])


def _impressions_by_outcome(lake: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Impression rows with a click but no conversion, and rows without any feedback; only
    rows of the window's full days, well before midnight, so a reply lands on the same day."""
    data = load_lake(lake.as_uri(), FIRST, END)
    impressions = data.impressions.astype({"request_id": str, "item_id": str})
    seconds_into_day = (impressions["ts"] - data.window_start) % 86_400
    impressions = impressions[
        (seconds_into_day < 80_000) & (impressions["ts"] < data.window_end - 86_400)
    ]
    feedback = data.feedback
    keyed = impressions.set_index(["request_id", "item_id"])
    types = feedback.groupby(["request_id", "item_id"])["type"].agg(set)
    outcome = types.reindex(keyed.index)
    clicked_only = outcome.map(lambda t: isinstance(t, set) and t == {"click"}).to_numpy()
    untouched = outcome.isna().to_numpy()
    return impressions[clicked_only], impressions[untouched]


def test_feedback_not_matching_its_impression_is_no_label_and_is_counted(
    lake_copy: Path,
) -> None:
    _, untouched = _impressions_by_outcome(lake_copy)
    victim, other, third = (untouched.iloc[i] for i in (0, 1, 2))
    shown_in_other = set(untouched.loc[untouched["request_id"] == other["request_id"], "item_id"])
    never_shown = next(i for i in untouched["item_id"] if i not in shown_in_other)
    _add_feedback(
        lake_copy,
        [
            # Another user's request: a click on what the victim was shown.
            {
                "event_id": "forged-1",
                "request_id": victim["request_id"],
                "ts": victim["ts"] + 30,
                "user_id": "attacker",
                "item_id": victim["item_id"],
                "type": "conversion",
            },
            # The right user and request, but an item that request never showed.
            {
                "event_id": "forged-2",
                "request_id": other["request_id"],
                "ts": other["ts"] + 30,
                "user_id": other["user_id"],
                "item_id": never_shown,
                "type": "click",
            },
            # A request id no impression has.
            {
                "event_id": "forged-3",
                "request_id": "no-such-request",
                "ts": third["ts"] + 30,
                "user_id": third["user_id"],
                "item_id": third["item_id"],
                "type": "click",
            },
            # A retry of forged-3 is one unmatched event, not two.
            {
                "event_id": "forged-3",
                "request_id": "no-such-request",
                "ts": third["ts"] + 40,
                "user_id": third["user_id"],
                "item_id": third["item_id"],
                "type": "click",
            },
        ],
    )
    data = load_lake(lake_copy.as_uri(), FIRST, END)
    assert _label(data, victim["request_id"], victim["item_id"]) == 0
    assert data.unmatched_feedback == 3
    assert not data.feedback["event_id"].str.startswith("forged-").any()


def test_the_synthetic_lake_has_no_unmatched_feedback(clean_lake: Path) -> None:
    data = load_lake(clean_lake.as_uri(), FIRST, END)
    assert data.unmatched_feedback == 0
    assert data.duplicates_dropped == 0


def test_an_event_id_reused_by_another_type_or_item_does_not_suppress_it(
    lake_copy: Path,
) -> None:
    clicked, untouched = _impressions_by_outcome(lake_copy)
    target, neighbour = clicked.iloc[0], untouched.iloc[0]
    original = load_lake(lake_copy.as_uri(), FIRST, END)
    click = original.feedback[
        (original.feedback["request_id"] == target["request_id"])
        & (original.feedback["item_id"] == target["item_id"])
    ].iloc[0]
    reused_id = click["event_id"]
    _add_feedback(
        lake_copy,
        [
            # The client reuses the click's event id for the conversion that follows it.
            {
                "event_id": reused_id,
                "request_id": target["request_id"],
                "ts": click["ts"],
                "user_id": target["user_id"],
                "item_id": target["item_id"],
                "type": "conversion",
            },
            # And for a click by another user on another request.
            {
                "event_id": reused_id,
                "request_id": neighbour["request_id"],
                "ts": neighbour["ts"] + 30,
                "user_id": neighbour["user_id"],
                "item_id": neighbour["item_id"],
                "type": "click",
            },
            # A retry of the click itself (same id, type and event) still counts once.
            {
                "event_id": reused_id,
                "request_id": target["request_id"],
                "ts": click["ts"],
                "user_id": target["user_id"],
                "item_id": target["item_id"],
                "type": "click",
            },
        ],
    )
    data = load_lake(lake_copy.as_uri(), FIRST, END)
    assert _label(data, target["request_id"], target["item_id"]) == 2
    assert _label(data, neighbour["request_id"], neighbour["item_id"]) == 1
    assert data.duplicates_dropped == 1
    matrix, _ = build_training_matrix(data)
    before, _ = build_training_matrix(original)
    assert int(matrix.labels.sum()) == int(before.labels.sum()) + 2
