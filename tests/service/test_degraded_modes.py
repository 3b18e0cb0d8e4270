"""The service under failure: the registry goes away, or there never was a model."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import httpx

from recplat.testing.rankers import register_ranker, tiny_snapshot, train_ranker
from recplat.testing.servers import MlflowServer, free_port, start_mlflow_server, wait_until
from recplat.testing.service_process import RankingService


def test_registry_down_keeps_serving_the_loaded_model(tmp_path: Path) -> None:
    process, registry = start_mlflow_server(tmp_path / "mlflow")
    try:
        version = register_ranker(
            registry.tracking_uri,
            "svc-down-ranker",
            train_ranker(seed=3),
            tiny_snapshot(),
            ("champion",),
        )
        service = RankingService(
            tmp_path / "svc",
            brand="svc-down",
            lake_uri=f"file://{tmp_path / 'lake'}",
            tracking_uri=registry.tracking_uri,
            env={"RECPLAT_RELOAD_INTERVAL_S": "0.5", "RECPLAT_REGISTRY_MAX_RETRIES": "0"},
        ).start()
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
    try:
        wait_until(
            lambda: (
                service.metric("recplat_model_reload_failures_total", reason="registry_unreachable")
                >= 2
            ),
            120,
            "failed registry polls counted",
        )
        with service.client() as client:
            answers = [
                client.post("/rank", json={"user_id": f"u-{n}", "candidates": ["i-1", "i-2"]})
                for n in range(20)
            ]
        assert [a.status_code for a in answers] == [200] * 20
        assert {(a.json()["model"]["version"], a.json()["fallback"]) for a in answers} == {
            (version, False)
        }
        assert httpx.get(f"{service.url}/readyz").status_code == 200
        assert "unreachable, keeping the serving models" in service.log()
    finally:
        service.stop()


def test_without_any_model_the_given_order_is_served_as_fallback(
    tmp_path: Path, mlflow_server: MlflowServer
) -> None:
    service = RankingService(
        tmp_path,
        brand="svc-nomodel",
        lake_uri=f"file://{tmp_path / 'lake'}",
        tracking_uri=mlflow_server.tracking_uri,
    ).start()
    try:
        assert httpx.get(f"{service.url}/readyz").json() == {"status": "ready-fallback"}
        with service.client() as client:
            answer = client.post("/rank", json={"user_id": "u", "candidates": ["c", "a", "b"]})
        assert answer.status_code == 200
        body = answer.json()
        assert body["fallback"] is True
        assert body["model"] == {"name": None, "version": None, "variant": "fallback"}
        assert [i["item_id"] for i in body["items"]] == ["c", "a", "b"]
        assert service.metric("recplat_fallback_total", reason="no_model") == 1
        assert service.metric("recplat_rank_requests_total", outcome="fallback") == 1
    finally:
        service.stop()


def test_unreachable_registry_at_start_serves_popularity_from_the_fallback_snapshot(
    tmp_path: Path,
) -> None:
    snapshot = tiny_snapshot()
    snapshot.save(tmp_path / "snapshot.json")
    dead_registry = f"http://127.0.0.1:{free_port()}"
    service = RankingService(
        tmp_path,
        brand="svc-popular",
        lake_uri=f"file://{tmp_path / 'lake'}",
        tracking_uri=dead_registry,
        env={"RECPLAT_FALLBACK_SNAPSHOT": str(tmp_path / "snapshot.json")},
    ).start(timeout=120)
    try:
        candidates = ["i-40", "unknown", "i-0", "i-7", "i-1"]
        with service.client() as client:
            body = client.post("/rank", json={"user_id": "u-1", "candidates": candidates}).json()
        clicks = dict(zip(snapshot.item_ids, snapshot.item_clicks.tolist(), strict=True))
        expected = sorted(candidates, key=lambda i: -clicks.get(i, 0.0))
        assert body["fallback"] is True
        assert [i["item_id"] for i in body["items"]] == expected
        assert [i["score"] for i in body["items"]] == [clicks.get(i, 0.0) for i in expected]
    finally:
        service.stop()


def test_server_errors_are_counted_apart_from_refused_requests(tmp_path: Path) -> None:
    service = RankingService(
        tmp_path / "svc",
        brand="svc-errors",
        lake_uri=f"file://{tmp_path / 'lake'}",
        env={"RECPLAT_SHIP_INTERVAL_S": "3600"},
    ).start()
    try:
        body = {"user_id": "u-1", "candidates": ["i-1", "i-2"]}
        for _ in range(5):
            assert httpx.post(f"{service.url}/rank", json=body).status_code == 401
        # The impression log's folder is gone (a broken volume): /rank cannot log, so it fails.
        shutil.rmtree(tmp_path / "svc" / "event-log" / "impressions")
        with service.client() as client:
            failed = client.post("/rank", json=body)
        assert failed.status_code == 500
        assert failed.json() == {"detail": "internal error; the service log has the cause"}
        assert service.metric("recplat_rank_requests_total", outcome="error") == 1
        assert service.metric("recplat_rank_requests_total", outcome="unauthorized") == 5
    finally:
        service.stop()
