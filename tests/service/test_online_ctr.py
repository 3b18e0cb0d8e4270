"""`recplat report ctr`: online CTR per variant with a Wilson interval, from lake parquet."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ranking_features.events import FEEDBACK_SCHEMA, IMPRESSION_SCHEMA
from typer.testing import CliRunner

from recplat.online_ctr import online_ctr, online_ctr_report, wilson_interval
from recplat.report_cli import app

TS = datetime(2026, 1, 5, 12, tzinfo=UTC)


def write_lake(root: Path, extra_feedback: list[dict[str, object]] | None = None) -> None:
    """20 champion requests (5 clicked), 10 challenger requests (4 clicked), 2 items each;
    request r<n> is user u<n>'s. `extra_feedback` rows are appended to the feedback."""
    impressions: dict[str, list[object]] = {name: [] for name in IMPRESSION_SCHEMA.names}
    for n in range(30):
        variant, version = ("champion", "3") if n < 20 else ("challenger", "4")
        for position, item in enumerate(("a", "b"), start=1):
            row = {
                "event_id": f"r{n}:{position}",
                "request_id": f"r{n}",
                "ts": TS,
                "user_id": f"u{n}",
                "item_id": item,
                "position": position,
                "score": 1.0 / position,
                "model_name": "acme-ranker",
                "model_version": version,
                "variant": variant,
                "brand": "acme",
            }
            for name, value in row.items():
                impressions[name].append(value)
    clicked = [0, 1, 2, 3, 4, 20, 21, 22, 23]
    feedback = {
        "event_id": [f"f{n}" for n in clicked] + ["f0", "f1b", "f-dismiss", "f-orphan"],
        "request_id": [f"r{n}" for n in clicked] + ["r0", "r1", "r5", None],
        "ts": [TS] * 13,
        "user_id": [f"u{n}" for n in clicked] + ["u0", "u1", "u5", "u9"],
        "item_id": ["a"] * 9 + ["a", "b", "a", "a"],
        "type": ["click"] * 9 + ["click", "click", "dismiss", "click"],
        "brand": ["acme"] * 13,
    }
    extra = [{**row, "ts": TS, "brand": "acme"} for row in extra_feedback or []]
    for kind, table in (
        ("impressions", pa.Table.from_pydict(impressions, schema=IMPRESSION_SCHEMA)),
        (
            "feedback",
            pa.concat_tables(
                [
                    pa.Table.from_pydict(feedback, schema=FEEDBACK_SCHEMA),
                    pa.Table.from_pylist(extra, schema=FEEDBACK_SCHEMA),
                ]
            ),
        ),
    ):
        folder = root / "events" / kind / "date=2026-01-05"
        folder.mkdir(parents=True)
        pq.write_table(table, folder / "part-0.parquet")


def test_wilson_interval_matches_the_textbook_value() -> None:
    low, high = wilson_interval(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    assert wilson_interval(0, 0) == (0.0, 0.0)


def test_ctr_per_variant_counts_requests_with_a_click_once(tmp_path: Path) -> None:
    write_lake(tmp_path)
    results = {r.variant: r for r in online_ctr(f"file://{tmp_path}")}
    champion, challenger = results["champion"], results["challenger"]
    # r0 clicked twice (one repeated event id), r1 on two items: still one clicked request each.
    assert (champion.requests, champion.clicked_requests, champion.ctr) == (20, 5, 0.25)
    assert (champion.impressions, champion.clicks, champion.model_versions) == (40, 6, "3")
    assert (challenger.requests, challenger.clicked_requests) == (10, 4)
    assert challenger.ci_low < 0.4 < challenger.ci_high
    assert (champion.ci_low, champion.ci_high) == pytest.approx(wilson_interval(5, 20))


def test_report_cli_prints_a_table_and_json(tmp_path: Path) -> None:
    write_lake(tmp_path)
    runner = CliRunner()
    table = runner.invoke(app, ["--lake-uri", f"file://{tmp_path}", "--brand", "acme"])
    assert table.exit_code == 0, table.output
    assert "champion" in table.output and "25.00%" in table.output
    assert "unmatched feedback: 0" in table.output
    as_json = runner.invoke(app, ["--lake-uri", f"file://{tmp_path}", "--json"])
    assert as_json.exit_code == 0
    report = json.loads(as_json.output)
    rows = {r["variant"]: r for r in report["variants"]}
    assert rows["challenger"]["ctr"] == 0.4
    assert report["unmatched_feedback"] == 0


# Clicks a client can send that name no impression: another user's request, an item the
# request never showed, a request id nobody served, and a retry of the first.
UNMATCHED_CLICKS: list[dict[str, object]] = [
    {"event_id": "x1", "request_id": "r6", "user_id": "u0", "item_id": "a", "type": "click"},
    {"event_id": "x2", "request_id": "r7", "user_id": "u7", "item_id": "z", "type": "click"},
    {"event_id": "x3", "request_id": "r99", "user_id": "u8", "item_id": "a", "type": "click"},
    {"event_id": "x1", "request_id": "r6", "user_id": "u0", "item_id": "a", "type": "click"},
]


def test_feedback_that_matches_no_impression_is_left_out_of_ctr_and_counted(
    tmp_path: Path,
) -> None:
    write_lake(tmp_path, UNMATCHED_CLICKS)
    report = online_ctr_report(f"file://{tmp_path}")
    champion = {r.variant: r for r in report.variants}["champion"]
    assert (champion.clicked_requests, champion.ctr, champion.clicks) == (5, 0.25, 6)
    # x1 and x2 name champion requests; x3 names no request at all.
    assert (report.unmatched_feedback, champion.unmatched_feedback) == (3, 2)

    table = CliRunner().invoke(app, ["--lake-uri", f"file://{tmp_path}"])
    assert table.exit_code == 0, table.output
    assert "25.00%" in table.output
    assert "unmatched feedback: 3" in table.output


def test_an_event_id_reused_by_another_event_does_not_suppress_it(tmp_path: Path) -> None:
    # Clients pick event ids: u6 and u7 reuse the id of r0's click ("f0"), one with a
    # conversion first; each click still counts, and r0's retried click (f0) still once.
    reused: list[dict[str, object]] = [
        {"event_id": "f0", "request_id": "r6", "user_id": "u6", "item_id": "b", "type": "click"},
        {
            "event_id": "f7",
            "request_id": "r7",
            "user_id": "u7",
            "item_id": "a",
            "type": "conversion",
        },
        {"event_id": "f7", "request_id": "r7", "user_id": "u7", "item_id": "a", "type": "click"},
    ]
    write_lake(tmp_path, reused)
    champion = {r.variant: r for r in online_ctr(f"file://{tmp_path}")}["champion"]
    assert (champion.clicked_requests, champion.clicks) == (7, 8)
    assert champion.ctr == 0.35


def test_report_cli_errors_are_one_clear_line(tmp_path: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(app, ["--lake-uri", f"file://{tmp_path}"])
    assert empty.exit_code == 1
    assert f"file://{tmp_path}: no impressions under events/impressions/date=*/" in empty.output
    bad_day = runner.invoke(app, ["--lake-uri", f"file://{tmp_path}", "--since", "Jan 5"])
    assert bad_day.exit_code == 2
    assert "--since: expected a date YYYY-MM-DD, got 'Jan 5'" in bad_day.output
