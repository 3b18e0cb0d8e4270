"""What the service refuses or leaves out: heavy imports, weak keys, a shared event log, torn
log records."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pytest
from ranking_features.events import IMPRESSION_SCHEMA
from ranking_service.event_log import EventLog, EventLogLockedError, read_segment
from ranking_service.lake_shipper import (
    MAX_UPLOAD_STRIKES,
    LakeShipper,
    segment_table,
    split_by_day,
)
from ranking_service.metrics import ServiceMetrics

from recplat.testing.service_process import SERVE

# The service image has none of these; in the dev venv they are installed, and lightgbm
# imports pandas when it can. So they are blocked, as in the image: anything that needs one fails.
IMAGE_SIMULATION = """
import sys
for name in ("pandas", "pulumi", "dask"):
    sys.modules[name] = None
import lightgbm as lgb, numpy as np
import ranking_service.app, ranking_service.__main__, ranking_service.lake_shipper
from ranking_features import FEATURE_NAMES
from ranking_service.model_store import RankingModel
from recplat.testing.rankers import tiny_snapshot, train_ranker
model = RankingModel("m", "1", "champion", "run", train_ranker(), tiny_snapshot(), 0.0)
model.warm_up()
print(model.predict("u-1", ["i-1", "i-2", "new"]).shape)
print(sorted(m for m in ("pandas", "pulumi", "dask") if sys.modules.get(m) is not None))
"""


def test_service_runs_without_training_or_infra_packages() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMAGE_SIMULATION],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["(3,)", "[]"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("short", "the key in {path} has 5 characters; use a random key of at least 16"),
        ("changeme-changeme-changeme", "the key in {path} is a placeholder"),
    ],
)
def test_weak_api_keys_are_refused_at_start(tmp_path: Path, key: str, message: str) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(key, encoding="utf-8")
    env = {
        "PATH": "/usr/bin:/bin",
        "RECPLAT_BRAND": "acme",
        "RECPLAT_LAKE_URI": f"file://{tmp_path}/lake",
        "RECPLAT_API_KEY_FILE": str(key_file),
        "RECPLAT_EVENT_LOG_DIR": str(tmp_path / "log"),
    }
    result = subprocess.run(
        [str(SERVE), "--port", "0"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert message.format(path=key_file) in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_settings_name_the_variable(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SERVE)],
        env={"PATH": "/usr/bin:/bin", "RECPLAT_BRAND": "Not A Brand"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "RECPLAT_BRAND: String should match pattern" in result.stderr
    assert "RECPLAT_LAKE_URI: Field required" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.fast
def test_one_event_log_has_one_writer(tmp_path: Path) -> None:
    first = EventLog(tmp_path)
    first.open()
    try:
        with pytest.raises(EventLogLockedError, match="give each replica its own"):
            EventLog(tmp_path).open()
    finally:
        first.close()


@pytest.mark.fast
def test_segments_shipped_while_appends_run_lose_no_record(tmp_path: Path) -> None:
    """The shipper seals and lists segments while the event loop appends: a segment that an
    append has just created is active, never shipped (and deleted) under its writer."""
    log = EventLog(tmp_path)
    log.open()
    appended = 200_000
    stop = threading.Event()

    def append() -> None:
        for n in range(appended):
            log.append("feedback", [{"event_id": str(n)}], durable=False)
        stop.set()

    shipped: list[str] = []
    writer = threading.Thread(target=append)
    writer.start()
    try:
        while not stop.is_set():
            log.seal("feedback")
            for segment in log.sealed_segments("feedback"):
                shipped += [r["event_id"] for r in read_segment(segment)]
                segment.unlink()
    finally:
        writer.join()
        log.close()
    for segment in log.sealed_segments("feedback"):
        shipped += [r["event_id"] for r in read_segment(segment)]
    assert len(shipped) == appended and set(shipped) == {str(n) for n in range(appended)}


@pytest.mark.fast
def test_a_torn_last_record_is_skipped(tmp_path: Path) -> None:
    segment = tmp_path / "0001.jsonl"
    records = [{"event_id": "a"}, {"event_id": "b"}]
    text = "".join(json.dumps(r) + "\n" for r in records) + '{"event_id": "c", "us'
    segment.write_text(text, encoding="utf-8")
    assert list(read_segment(segment)) == records


@pytest.mark.fast
@pytest.mark.parametrize("torn", [False, True], ids=["whole", "torn"])
def test_impression_segments_expand_to_one_row_per_item_per_day(tmp_path: Path, torn: bool) -> None:
    day = 86_400_000_000
    midnight = 20_000 * day
    records = [
        {
            "request_id": "r1", "ts": midnight - 1, "user_id": "u1", "items": ["b", "a"],
            "scores": [0.25, 0.5], "model_name": "m", "model_version": "3",
            "variant": "champion", "brand": "acme", "policy": "explore", "propensity": 0.25,
            "pool": ["a", "b", "c", "d"], "experiment_id": "exp-7",
        },
        # Written before exploration was logged: no policy, propensity, pool or experiment.
        {
            "request_id": "r2", "ts": midnight + 5, "user_id": "u2", "items": ["c", "a", "é"],
            "scores": [3.0, 2.0, 1.0], "model_name": None, "model_version": None,
            "variant": "fallback", "brand": "acme",
        },
    ]  # fmt: skip
    segment = tmp_path / "0001.jsonl"
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    segment.write_text(text + ('{"request_id": "r3", "ts"' if torn else ""), encoding="utf-8")
    parts = split_by_day(segment_table("impressions", segment))
    assert [name for name, _ in parts] == ["2024-10-03", "2024-10-04"]
    before, after = (table.to_pylist() for _, table in parts)
    assert [(r["event_id"], r["item_id"], r["position"], r["score"]) for r in before] == [
        ("r1:1", "b", 1, 0.25),
        ("r1:2", "a", 2, 0.5),
    ]
    for row in before:
        assert (row["policy"], row["propensity"], row["experiment_id"]) == (
            "explore",
            0.25,
            "exp-7",
        )
        assert row["pool"] == ["a", "b", "c", "d"]
    assert [(r["event_id"], r["item_id"], r["position"]) for r in after] == [
        ("r2:1", "c", 1),
        ("r2:2", "a", 2),
        ("r2:3", "é", 3),
    ]
    assert after[0]["model_name"] is None and after[0]["variant"] == "fallback"
    for row in after:
        assert [row[f] for f in ("policy", "propensity", "pool", "experiment_id")] == [None] * 4
    assert parts[0][1].schema.equals(IMPRESSION_SCHEMA)


@pytest.mark.fast
def test_events_before_1970_land_in_their_own_day(tmp_path: Path) -> None:
    day = 86_400_000_000
    records = [
        {"event_id": e, "ts": ts, "user_id": "u", "item_id": "i", "type": "click"}
        for e, ts in (("a", -day - 1), ("b", -day), ("c", -1), ("d", 0), ("e", day - 1))
    ]
    segment = tmp_path / "0001.jsonl"
    segment.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    parts = split_by_day(segment_table("feedback", segment))
    assert [(name, table["event_id"].to_pylist()) for name, table in parts] == [
        ("1969-12-30", ["a"]),
        ("1969-12-31", ["b", "c"]),
        ("1970-01-01", ["d", "e"]),
    ]


def _feedback_segment(log: EventLog, event_id: str) -> None:
    record = {"event_id": event_id, "ts": 0, "user_id": "u", "item_id": "i", "type": "click"}
    log.append("feedback", [record], durable=True)
    log.seal("feedback")


@pytest.mark.fast
def test_a_segment_the_lake_keeps_refusing_is_quarantined_without_blocking_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = EventLog(tmp_path / "log")
    log.open()
    shipper = LakeShipper(log, f"file://{tmp_path / 'lake'}", ServiceMetrics("acme"), 1.0)
    for event_id in ("refused", "fine-1", "fine-2"):
        _feedback_segment(log, event_id)
    refused = log.sealed_segments("feedback")[0]
    write = shipper._write_parquet

    def write_unless_refused(table: pa.Table, folder: str, name: str) -> None:
        if name == refused.stem + ".parquet":
            raise OSError("the lake refuses this blob")
        write(table, folder, name)

    monkeypatch.setattr(shipper, "_write_parquet", write_unless_refused)
    assert shipper.ship_once(seal=False) == 2
    assert log.sealed_segments() == [refused]
    for _ in range(MAX_UPLOAD_STRIKES - 1):
        _feedback_segment(log, "later")
        shipper.ship_once(seal=False)
    assert log.sealed_segments() == []
    assert log.quarantined_segments("feedback") == [
        tmp_path / "log" / "quarantine" / "feedback" / refused.name
    ]
    metrics = shipper.metrics.registry
    labels = {"brand": "acme", "kind": "feedback"}
    assert metrics.get_sample_value("recplat_events_quarantined_segments", labels) == 1
    log.close()


@pytest.mark.fast
def test_an_unreachable_lake_quarantines_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = EventLog(tmp_path / "log")
    log.open()
    shipper = LakeShipper(log, f"file://{tmp_path / 'lake'}", ServiceMetrics("acme"), 1.0)
    for event_id in ("a", "b", "c"):
        _feedback_segment(log, event_id)
    attempts: list[str] = []

    def lake_down(table: pa.Table, folder: str, name: str) -> None:
        attempts.append(name)
        raise OSError("connection refused")

    monkeypatch.setattr(shipper, "_write_parquet", lake_down)
    for _ in range(MAX_UPLOAD_STRIKES + 2):
        assert shipper.ship_once(seal=False) == 0
    assert len(log.sealed_segments()) == 3
    assert log.quarantined_segments() == []
    # A round gives up after the first failures instead of timing out on every segment.
    assert len(attempts) < 3 * (MAX_UPLOAD_STRIKES + 2)
    log.close()
