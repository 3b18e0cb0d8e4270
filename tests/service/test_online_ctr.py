"""`recplat report ctr`: online CTR per model version and variant with a user-clustered
interval, from lake parquet."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ranking_features.events import FEEDBACK_SCHEMA, IMPRESSION_SCHEMA
from ranking_features.statistics import clustered_ratio
from typer.testing import CliRunner

from recplat.online_ctr import VersionCtr, online_ctr, online_ctr_report
from recplat.report_cli import app

pytestmark = pytest.mark.fast

TS = datetime(2026, 1, 5, 12, tzinfo=UTC)


def write_lake(root: Path, extra_feedback: list[dict[str, object]] | None = None) -> None:
    """20 champion requests (5 clicked), 10 challenger requests (4 clicked), 2 items each;
    request r<n> is user u<n>'s. `extra_feedback` rows are appended to the feedback."""
    impressions: list[dict[str, object]] = []
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
            impressions.append(row)
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
        ("impressions", pa.Table.from_pylist(impressions, schema=IMPRESSION_SCHEMA)),
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


def test_ctr_per_variant_counts_requests_with_a_click_once(tmp_path: Path) -> None:
    write_lake(tmp_path)
    results = {r.variant: r for r in online_ctr(f"file://{tmp_path}")}
    champion, challenger = results["champion"], results["challenger"]
    # r0 clicked twice (one repeated event id), r1 on two items: still one clicked request each.
    assert (champion.requests, champion.clicked_requests, champion.ctr) == (20, 5, 0.25)
    assert (champion.impressions, champion.clicks, champion.model_version) == (40, 6, "3")
    assert (challenger.requests, challenger.clicked_requests) == (10, 4)
    assert challenger.ci_low < 0.4 < challenger.ci_high
    # One request per user here: the clustered interval over the 20 users' 0/1 outcomes.
    expected = clustered_ratio([1] * 5 + [0] * 15, [1] * 20).interval()
    assert (champion.ci_low, champion.ci_high) == pytest.approx(expected)


def _version_rows(lake: Path) -> dict[tuple[str, str], VersionCtr]:
    return {(r.model_version, r.variant): r for r in online_ctr(lake.as_uri())}


def test_ctr_rows_are_per_model_version_so_a_moved_champion_is_two_rows(tmp_path: Path) -> None:
    write_lake(tmp_path)
    # The next day the champion alias moved to v4 and one request fell back to no model.
    later = datetime(2026, 1, 6, 9, tzinfo=UTC)
    rows = [
        {
            "event_id": f"n{n}:1",
            "request_id": f"n{n}",
            "ts": later,
            "user_id": f"u{n}",
            "item_id": "a",
            "position": 1,
            "variant": "fallback" if n == 3 else "champion",
            "model_version": None if n == 3 else "4",
            "brand": "acme",
        }
        for n in range(4)
    ]
    folder = tmp_path / "events" / "impressions" / "date=2026-01-06"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=IMPRESSION_SCHEMA), folder / "p.parquet")

    found = _version_rows(tmp_path)

    assert sorted(found) == [
        ("-", "fallback"),
        ("3", "champion"),
        ("4", "challenger"),
        ("4", "champion"),
    ]
    assert [r.model_version for r in online_ctr(tmp_path.as_uri())] == ["3", "4", "4", "-"]
    assert found[("4", "champion")].requests == 3


def test_interval_is_clustered_by_user_not_by_request(tmp_path: Path) -> None:
    # u0..u4 click every one of their 4 lists, u5..u19 none: 20 users, 80 requests, CTR 0.25.
    rows, clicks = [], []
    for n in range(80):
        user = n % 20
        rows.append(
            {
                "event_id": f"r{n}:1",
                "request_id": f"r{n}",
                "ts": TS,
                "user_id": f"u{user}",
                "item_id": "a",
                "position": 1,
                "variant": "champion",
                "model_version": "3",
                "brand": "acme",
            }
        )
        if user < 5:
            clicks.append(
                {
                    "event_id": f"f{n}",
                    "request_id": f"r{n}",
                    "ts": TS,
                    "user_id": f"u{user}",
                    "item_id": "a",
                    "type": "click",
                    "brand": "acme",
                }
            )
    for kind, schema, data in (
        ("impressions", IMPRESSION_SCHEMA, rows),
        ("feedback", FEEDBACK_SCHEMA, clicks),
    ):
        folder = tmp_path / "events" / kind / "date=2026-01-05"
        folder.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(data, schema=schema), folder / "p.parquet")

    (row,) = online_ctr(tmp_path.as_uri())

    assert (row.users, row.requests, row.ctr) == (20, 80, 0.25)
    # Four correlated requests per user carry the information of one: the interval is as wide
    # as 20 independent trials', twice as wide as 80 independent requests would give.
    binomial_half = 1.959963984540054 * (0.25 * 0.75 / 80) ** 0.5
    assert (row.ci_high - row.ci_low) / 2 > 1.9 * binomial_half


def test_report_cli_prints_a_table_and_json(tmp_path: Path) -> None:
    write_lake(tmp_path)
    runner = CliRunner()
    table = runner.invoke(app, ["--lake-uri", f"file://{tmp_path}", "--brand", "acme"])
    assert table.exit_code == 0, table.output
    assert "champion" in table.output and "25.00%" in table.output and "v3" in table.output
    assert "unmatched feedback: 0" in table.output
    as_json = runner.invoke(app, ["--lake-uri", f"file://{tmp_path}", "--json"])
    assert as_json.exit_code == 0
    report = json.loads(as_json.output)
    rows = {r["variant"]: r for r in report["rows"]}
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
    champion = {r.variant: r for r in report.rows}["champion"]
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
