"""The experiment evaluator reads a real file:// lake written with the events schemas: only the
experiment's impressions since its start, feedback under the feedback rules, arms from the salt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ranking_features.assignment import experiment_arm
from ranking_features.events import FEEDBACK_SCHEMA, IMPRESSION_SCHEMA
from ranking_training.experiment_arms import arm_statistics, read_experiment_events
from ranking_training.experiment_spec import ExperimentSpec
from ranking_training.experiments import evaluate

pytestmark = pytest.mark.fast

EXPERIMENT = "exp-acme-v2-20260301T120000Z"
START = datetime(2026, 3, 1, 12, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 18, tzinfo=UTC)
SPEC = ExperimentSpec(EXPERIMENT, START, "1", "2", 0.5, 14)


def _users(arm: str, count: int) -> list[str]:
    found = [
        u for u in (f"user-{i}" for i in range(200)) if experiment_arm(EXPERIMENT, u, 0.5) == arm
    ]
    return found[:count]


def _write(root: Path, kind: str, schema: pa.Schema, rows: list[dict[str, Any]]) -> None:
    by_day: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_day.setdefault(row["ts"].date().isoformat(), []).append(row)
    for day, day_rows in by_day.items():
        folder = root / "events" / kind / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(day_rows, schema=schema)
        pq.write_table(table, folder / f"part-{len(list(folder.iterdir()))}.parquet")


def _impression(
    request: str, user: str, ts: datetime, version: str | None, variant: str, experiment: str | None
) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{request}:{position}",
            "request_id": request,
            "ts": ts,
            "user_id": user,
            "item_id": f"item-{position}",
            "position": position,
            "score": 1.0 / position,
            "model_name": "acme-ranker",
            "model_version": version,
            "variant": variant,
            "brand": "acme",
            "policy": "exploit",
            "propensity": 1.0,
            "pool": None,
            "experiment_id": experiment,
        }
        for position in (1, 2)
    ]


def _feedback(
    event: str, request: str | None, user: str, item: str, kind: str, ts: datetime
) -> dict[str, Any]:
    return {
        "event_id": event,
        "request_id": request,
        "ts": ts,
        "user_id": user,
        "item_id": item,
        "type": kind,
        "brand": "acme",
    }


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    champions, challengers = _users("champion", 2), _users("challenger", 2)
    hour = timedelta(hours=1)
    day2 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    impressions = [
        # Champion arm: 3 requests of 2 users, one clicked and converted.
        *_impression("c1", champions[0], START + hour, "1", "champion", EXPERIMENT),
        *_impression("c2", champions[0], day2, "1", "champion", EXPERIMENT),
        *_impression("c3", champions[1], day2, "1", "champion", EXPERIMENT),
        # Challenger arm: 2 model requests and one fallback answer, one clicked.
        *_impression("h1", challengers[0], START + hour, "2", "challenger", EXPERIMENT),
        *_impression("h2", challengers[1], day2, "2", "challenger", EXPERIMENT),
        *_impression("h3", challengers[1], day2 + hour, None, "fallback", EXPERIMENT),
        # Not this experiment's: before its start, another experiment, none, after `now`.
        *_impression("x1", champions[0], START - hour, "1", "champion", EXPERIMENT),
        *_impression("x2", champions[0], day2, "1", "champion", "exp-acme-v1-old"),
        *_impression("x3", challengers[0], day2, "1", "champion", None),
        *_impression("x4", challengers[0], NOW + hour, "2", "challenger", EXPERIMENT),
    ]
    impressions += impressions[:1]  # a shipped-twice impression counts once
    feedback = [
        _feedback("e1", "c1", champions[0], "item-1", "click", START + 2 * hour),
        _feedback("e1", "c1", champions[0], "item-1", "click", START + 3 * hour),  # a retry
        _feedback("e2", "c1", champions[0], "item-2", "conversion", START + 3 * hour),
        _feedback("e3", "h2", challengers[1], "item-1", "click", day2 + hour),
        # Another user's click on a challenger list: unmatched, ignored.
        _feedback("e4", "h1", champions[1], "item-1", "click", START + 2 * hour),
        # A click on a list outside the experiment, and one after `now`.
        _feedback("e5", "x2", champions[0], "item-1", "click", day2 + hour),
        _feedback("e6", "c3", champions[1], "item-1", "click", NOW + hour),
    ]
    _write(tmp_path, "impressions", IMPRESSION_SCHEMA, impressions)
    _write(tmp_path, "feedback", FEEDBACK_SCHEMA, feedback)
    return tmp_path


def test_only_the_experiments_requests_since_its_start_are_read(lake: Path) -> None:
    data = read_experiment_events(lake.as_uri(), SPEC, NOW)

    assert sorted(data.requests["request_id"]) == ["c1", "c2", "c3", "h1", "h2", "h3"]
    assert data.impressions == 12
    assert data.unmatched_feedback == 1


def test_arms_count_users_requests_clicks_conversions_and_fallbacks(lake: Path) -> None:
    stats = arm_statistics(read_experiment_events(lake.as_uri(), SPEC, NOW))
    champion, challenger = stats["champion"], stats["challenger"]

    assert (champion.users, champion.requests, champion.clicked_requests) == (2, 3, 1)
    assert champion.converted_requests == 1
    assert champion.ctr.estimate == pytest.approx(1 / 3)
    # The fallback answer counts against the challenger arm its user belongs to.
    assert (challenger.users, challenger.requests, challenger.clicked_requests) == (2, 3, 1)
    assert (challenger.fallback_requests, challenger.fallback_ratio) == (1, pytest.approx(1 / 3))
    assert champion.fallback_requests == 0
    assert (champion.model_version, challenger.model_version) == ("1", "2")


def test_evaluate_continues_on_a_handful_of_users(lake: Path) -> None:
    _, decision = evaluate(lake.as_uri(), SPEC, NOW)
    assert decision.kind == "continue"
    assert "a verdict needs 100 per arm" in decision.reason


def test_an_experiment_without_traffic_yet_reads_as_empty(tmp_path: Path) -> None:
    stats = arm_statistics(read_experiment_events(tmp_path.as_uri(), SPEC, NOW))
    assert stats["champion"].requests == stats["challenger"].requests == 0
