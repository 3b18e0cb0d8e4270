"""Feedback and impressions reach the lake: every 202-acknowledged event exactly once, even
across a kill -9; impressions as one row per served item, in the lake layout."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import adlfs
import httpx
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from ranking_features.events import FEEDBACK_SCHEMA, IMPRESSION_SCHEMA

from recplat.testing.servers import Azurite, wait_until
from recplat.testing.service_process import RankingService


def lake_table(root: Path, kind: str) -> ds.Dataset:
    return ds.dataset(root / "events" / kind, format="parquet", partitioning="hive")


def lake_event_ids(root: Path) -> list[str]:
    if not (root / "events" / "feedback").exists():
        return []
    return lake_table(root, "feedback").to_table(columns=["event_id"])["event_id"].to_pylist()


def test_acknowledged_feedback_survives_kill_9_exactly_once(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    service = RankingService(
        tmp_path / "svc",
        brand="svc-durable",
        lake_uri=f"file://{lake}",
        # Ship rarely, so most events are still only in the local log when the process dies.
        env={"RECPLAT_SHIP_INTERVAL_S": "3600"},
    ).start()
    acknowledged: list[str] = []
    stop = threading.Event()

    def send(sender: int) -> None:
        with service.client(timeout=5) as client:
            n = 0
            while not stop.is_set():
                batch = [
                    {
                        "event_id": f"e-{sender}-{n}-{k}",
                        "user_id": f"u-{n % 7}",
                        "item_id": f"i-{k}",
                        "type": "click",
                    }
                    for k in range(1 + n % 3)
                ]
                n += 1
                try:
                    response = client.post("/feedback", json={"events": batch})
                except httpx.HTTPError:
                    continue
                if response.status_code == 202:
                    acknowledged.extend(e["event_id"] for e in batch)

    senders = [threading.Thread(target=send, args=(s,), daemon=True) for s in range(2)]
    for sender in senders:
        sender.start()
    wait_until(lambda: len(acknowledged) >= 300, 120, "300 events acknowledged")
    service.kill()
    stop.set()
    for sender in senders:
        sender.join(30)
    acked = set(acknowledged)
    assert lake_event_ids(lake) == []

    service.start()
    try:
        wait_until(lambda: acked <= set(lake_event_ids(lake)), 120, "acknowledged events in lake")
        ids = lake_event_ids(lake)
        # Shipping is at-least-once and dedupe is by event_id; here not even a duplicate.
        assert len(ids) == len(set(ids))
        assert "segment(s) from a previous run to ship" in service.log()
        table = lake_table(lake, "feedback").to_table()
        assert table.select(FEEDBACK_SCHEMA.names).schema.equals(FEEDBACK_SCHEMA)
        assert set(table["brand"].to_pylist()) == {"svc-durable"}
    finally:
        service.stop()


def test_graceful_stop_ships_impressions_one_row_per_served_item(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    service = RankingService(
        tmp_path / "svc",
        brand="svc-impress",
        lake_uri=f"file://{lake}",
        env={"RECPLAT_SHIP_INTERVAL_S": "3600"},
    ).start()
    with service.client() as client:
        answers = [
            client.post(
                "/rank", json={"user_id": f"u-{n}", "candidates": ["a", "b", "c", "d"], "k": 3}
            ).json()
            for n in range(5)
        ]
    # uvicorn shuts down cleanly, then re-raises SIGTERM to itself: -15 is a graceful stop.
    assert service.stop() in (0, -15)
    assert "stopped: event log flushed and shipped" in service.log()
    assert list((tmp_path / "svc" / "event-log" / "impressions").iterdir()) == []
    table = lake_table(lake, "impressions").to_table()
    assert table.select(IMPRESSION_SCHEMA.names).schema.equals(IMPRESSION_SCHEMA)
    assert table.num_rows == 15
    first = table.filter(pc.field("request_id") == answers[0]["request_id"]).sort_by("position")
    assert first["item_id"].to_pylist() == [i["item_id"] for i in answers[0]["items"]]
    assert first["position"].to_pylist() == [1, 2, 3]
    assert set(first["variant"].to_pylist()) == {"fallback"}
    # The fallback never explores: its lists are exploited, shown with certainty.
    assert set(table["policy"].to_pylist()) == {"exploit"}
    assert set(table["propensity"].to_pylist()) == {1.0}
    assert table["pool"].null_count == table["experiment_id"].null_count == 15
    assert len(set(table["event_id"].to_pylist())) == 15
    day_dirs = {p.name for p in (lake / "events" / "impressions").iterdir()}
    assert all(d.startswith("date=") for d in day_dirs)


@pytest.mark.azurite
def test_feedback_ships_to_blob_storage_through_abfs(tmp_path: Path, azurite: Azurite) -> None:
    container = f"lake-{uuid.uuid4().hex[:8]}"
    fs = adlfs.AzureBlobFileSystem(connection_string=azurite.connection_string)
    fs.mkdir(container)
    service = RankingService(
        tmp_path,
        brand="svc-blob",
        lake_uri=f"abfs://{container}",
        env={"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string},
    ).start()
    try:
        with service.client() as client:
            event = {"event_id": "blob-1", "user_id": "u", "item_id": "i", "type": "conversion"}
            assert client.post("/feedback", json=event).status_code == 202

        def shipped() -> list[str]:
            fs.invalidate_cache()
            return fs.glob(f"{container}/events/feedback/date=*/*.parquet")

        wait_until(lambda: bool(shipped()), 60, "feedback parquet in Azurite")
        dataset = ds.dataset(shipped(), filesystem=fs, format="parquet")
        assert dataset.to_table()["event_id"].to_pylist() == ["blob-1"]
        assert service.metric("recplat_events_shipped_total", kind="feedback") == 1
    finally:
        service.stop()


def test_a_poison_segment_is_quarantined_while_later_events_ship(tmp_path: Path) -> None:
    lake, workdir = tmp_path / "lake", tmp_path / "svc"
    leftovers = workdir / "event-log" / "feedback"
    leftovers.mkdir(parents=True)
    # Left by a service without the ts window: 9999-12-31T23:59:59-12:00 is in year 10000 UTC,
    # which no date partition can name. Named to sort first, so it is shipped first.
    poison = leftovers / "00000000000000000001-poison000000.jsonl"
    poison_record = {
        "event_id": "poison", "request_id": None, "ts": 253_402_343_999_000_000,
        "user_id": "u", "item_id": "i", "type": "click", "brand": "svc-poison",
    }  # fmt: skip
    poison.write_text(json.dumps(poison_record) + "\n", encoding="utf-8")
    poison_bytes = poison.read_bytes()
    # And one from before 1970 (a microsecond before the epoch): its day is 1969-12-31.
    before_epoch = leftovers / "00000000000000000002-epoch0000000.jsonl"
    old_record = {**poison_record, "event_id": "before-epoch", "ts": -1}
    before_epoch.write_text(json.dumps(old_record) + "\n", encoding="utf-8")

    service = RankingService(workdir, brand="svc-poison", lake_uri=f"file://{lake}").start()
    try:
        later = [f"later-{n}" for n in range(3)]
        with service.client() as client:
            for event_id in later:
                event = {"event_id": event_id, "user_id": "u", "item_id": "i", "type": "click"}
                assert client.post("/feedback", json=event).status_code == 202
        expected = {*later, "before-epoch"}
        wait_until(lambda: expected <= set(lake_event_ids(lake)), 60, "later events in the lake")
        assert "poison" not in lake_event_ids(lake)
        quarantined = workdir / "event-log" / "quarantine" / "feedback" / poison.name
        assert quarantined.read_bytes() == poison_bytes
        assert not poison.exists()
        assert service.metric("recplat_events_quarantined_segments", kind="feedback") == 1
        assert service.metric("recplat_event_ship_failures_total", kind="feedback") >= 1
        wait_until(lambda: service.metric("recplat_events_pending_segments") == 0, 30, "no pending")
        table = lake_table(lake, "feedback").to_table()
        dates = dict(zip(table["event_id"].to_pylist(), table["date"].to_pylist(), strict=True))
        assert str(dates["before-epoch"]) == "1969-12-31"
        assert (lake / "events" / "feedback" / "date=1969-12-31").is_dir()
    finally:
        service.stop()
    log = service.log()
    assert f"feedback segment {poison.name} cannot be shipped, so it is quarantined" in log
    assert "outside the years 1 to 9999 that a date partition can name" in log
    assert (
        quarantined.with_name(poison.name + ".error")
        .read_text()
        .startswith("its records cannot become parquet: ts 253402343999000000")
    )
    assert "stopped: event log flushed and shipped" not in log
    assert "0 segment(s) left to ship at the next start, 1 quarantined in " in log

    # Kept across a restart: still counted (an alert keeps firing), never retried or lost.
    service.start()
    try:
        assert service.metric("recplat_events_quarantined_segments", kind="feedback") == 1
        assert quarantined.read_bytes() == poison_bytes
    finally:
        service.stop()
