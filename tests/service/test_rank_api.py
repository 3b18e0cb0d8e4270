"""POST /rank, /feedback and the operations endpoints of a real service over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
from ranking_features import build_features

from tests.service.conftest import RegisteredRankers
from tests.service.service_process import RankingService

CANDIDATES = [f"i-{n}" for n in range(0, 60, 2)] + ["new-item-1", "new-item-2"]


def test_ranking_without_k_is_the_models_top_default_k(
    service: RankingService, rankers: RegisteredRankers
) -> None:
    with service.client() as client:
        for user in ("u-1", "u-7", "never-seen-user"):
            body = {"user_id": user, "candidates": CANDIDATES, "recent_items": ["i-3", "i-4"]}
            response = client.post("/rank", json=body)
            assert response.status_code == 200, response.text
            answer = response.json()
            variant = answer["model"]["variant"]
            booster = rankers.champion if variant == "champion" else rankers.challenger
            features = build_features(rankers.snapshot, user, CANDIDATES, ["i-3", "i-4"])
            expected = np.asarray(booster.predict(features))
            # 32 candidates, no k: the default_k (20) best, by the model's own scores.
            order = np.argsort(-expected, kind="stable")[:20]
            assert [i["item_id"] for i in answer["items"]] == [CANDIDATES[i] for i in order]
            scores = [i["score"] for i in answer["items"]]
            assert np.allclose(scores, expected[order], rtol=0, atol=1e-6)
            assert answer["fallback"] is False
            assert answer["model"]["name"] == rankers.model_name
            version = {
                "champion": rankers.champion_version,
                "challenger": rankers.challenger_version,
            }[variant]
            assert answer["model"]["version"] == version
            assert len(answer["request_id"]) == 32


def test_k_returns_the_top_k(service: RankingService) -> None:
    with service.client() as client:
        full = client.post("/rank", json={"user_id": "u-2", "candidates": CANDIDATES}).json()
        top = client.post("/rank", json={"user_id": "u-2", "candidates": CANDIDATES, "k": 5})
        every = client.post("/rank", json={"user_id": "u-2", "candidates": CANDIDATES, "k": 99})
        few = client.post("/rank", json={"user_id": "u-2", "candidates": CANDIDATES[:3]})
    assert top.status_code == 200
    assert [i["item_id"] for i in top.json()["items"]] == [i["item_id"] for i in full["items"][:5]]
    # k (or the default 20) above the number of candidates returns them all.
    assert len(every.json()["items"]) == len(CANDIDATES)
    assert len(few.json()["items"]) == 3


def test_a_challenger_without_an_experiment_id_takes_no_traffic(service: RankingService) -> None:
    # The fixture's challenger has no `experiment_id` tag: no online experiment runs, so every
    # user gets the champion (test_variant_split_http.py covers a running experiment).
    with service.client() as client:
        variants = {
            client.post(
                "/rank", json={"user_id": f"user-{n}", "candidates": ["i-1", "i-2"]}
            ).json()["model"]["variant"]
            for n in range(100)
        }
    assert variants == {"champion"}


def test_rank_and_feedback_need_the_api_key(service: RankingService) -> None:
    body = {"user_id": "u-1", "candidates": ["i-1"]}
    event = {"user_id": "u-1", "item_id": "i-1", "type": "click"}
    for path, payload in (("/rank", body), ("/feedback", event)):
        missing = httpx.post(f"{service.url}{path}", json=payload)
        assert missing.status_code == 401
        assert missing.json() == {
            "detail": "missing API key: send the header 'Authorization: Bearer <brand API key>'"
        }
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = httpx.post(
            f"{service.url}{path}", json=payload, headers={"Authorization": "Bearer not-the-key"}
        )
        assert wrong.status_code == 403
        assert wrong.json() == {"detail": "invalid API key for this brand"}
        for header in (f"Basic {service.api_key}", "Bearer", service.api_key):
            other = httpx.post(
                f"{service.url}{path}", json=payload, headers={"Authorization": header}
            )
            assert other.status_code == 401, (path, header)
        lowercase = httpx.post(
            f"{service.url}{path}",
            json=payload,
            headers={"Authorization": f"bearer {service.api_key}"},
        )
        assert lowercase.status_code in (200, 202), (path, lowercase.text)
    assert httpx.get(f"{service.url}/metrics").status_code == 200
    assert httpx.get(f"{service.url}/healthz").json() == {"status": "ok"}
    assert service.metric("recplat_rank_requests_total", outcome="unauthorized") >= 2


def test_rank_is_documented_with_its_body_and_security(service: RankingService) -> None:
    spec = httpx.get(f"{service.url}/openapi.json").json()
    operation = spec["paths"]["/rank"]["post"]
    assert operation["security"] == [{"HTTPBearer": []}]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["user_id", "candidates"]
    assert schema["properties"]["candidates"]["maxItems"] == 100
    assert schema["examples"]
    response = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert response == {"$ref": "#/components/schemas/RankResponse"}
    assert {"401", "403", "413", "422"} <= set(operation["responses"])


def test_rank_bodies_that_are_not_json_get_422_saying_so(service: RankingService) -> None:
    with service.client() as client:
        form = client.post("/rank", content=b"user_id=u-1", headers={"Content-Type": "text/plain"})
        broken = client.post(
            "/rank",
            content=b'{"user_id": "u-1", "candidates": [',
            headers={"Content-Type": "application/json"},
        )
        wrapped = client.post(
            "/rank",
            content=b'{"user_id": "u-1", "candidates": ["i-1"]}',
            headers={"Content-Type": "application/vnd.recplat+json; charset=utf-8"},
        )
    assert form.status_code == 422
    assert form.json()["detail"] == (
        "body: expected a JSON object; send it with 'Content-Type: application/json'"
    )
    assert broken.status_code == 422
    assert broken.json()["detail"].startswith("body: Invalid JSON"), broken.json()
    assert wrapped.status_code == 200, wrapped.text


def test_oversized_body_gets_413(service: RankingService) -> None:
    body = {"user_id": "u-1", "candidates": ["i-1"], "context": {"pad": "x" * 70_000}}
    with service.client() as client:
        response = client.post("/rank", json=body)
    assert response.status_code == 413
    assert response.json() == {"detail": "request body too large: at most 65536 bytes are accepted"}
    # Refused, not failed: counted apart from server errors, which page on-call.
    assert service.metric("recplat_rank_requests_total", outcome="too_large") >= 1
    assert service.metric("recplat_rank_requests_total", outcome="error") == 0


def test_invalid_bodies_get_422_naming_the_field(service: RankingService) -> None:
    cases = [
        (
            "/rank",
            {"user_id": "u-1", "candidates": [f"i-{n}" for n in range(101)]},
            "candidates: List should have at most 100 items after validation, not 101",
        ),
        (
            "/rank",
            {"user_id": "u-1", "candidates": ["i-1", "i-2", "i-1"]},
            "candidates: item ids must be unique; duplicated: i-1",
        ),
        ("/rank", {"user_id": "u-1", "candidates": []}, "candidates: List should have at least"),
        ("/rank", {"candidates": ["i-1"]}, "user_id: Field required"),
        ("/rank", {"user_id": "u", "candidates": ["i-1"], "k": 0}, "k: Input should be greater"),
        (
            "/feedback",
            {"events": [{"user_id": "u", "item_id": "i", "type": "like"}]},
            "events[0].type: Input should be 'click', 'conversion' or 'dismiss'",
        ),
        (
            "/feedback",
            {"user_id": "u", "item_id": "i", "type": "click", "ts": "2025-01-01T10:00:00"},
            "ts: Input should have timezone info",
        ),
    ]
    with service.client() as client:
        for path, body, message in cases:
            response = client.post(path, json=body)
            assert response.status_code == 422, (body, response.text)
            assert response.json()["detail"].startswith(message), response.json()
    assert service.metric("recplat_rank_requests_total", outcome="invalid") >= 5


def test_feedback_ts_outside_the_accepted_window_gets_422_naming_ts(
    service: RankingService,
) -> None:
    event = {"user_id": "u", "item_id": "i", "type": "click"}
    too_late = "9999-12-31T23:59:59-12:00"
    future = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    cases = [
        (
            {**event, "ts": too_late},
            f"ts: must be from 2000-01-01T00:00:00Z to 1 hour past the server's clock, "
            f"got {too_late}",
        ),
        ({**event, "ts": future}, "ts: must be from 2000-01-01T00:00:00Z to 1 hour past"),
        ({**event, "ts": "1999-12-31T23:59:59Z"}, "ts: must be from 2000-01-01T00:00:00Z"),
        ({**event, "ts": "1969-12-31T23:59:59Z"}, "ts: must be from 2000-01-01T00:00:00Z"),
        (
            {"events": [{**event, "ts": "2025-01-31T12:00:00Z"}, {**event, "ts": too_late}]},
            "events[1].ts: must be from 2000-01-01T00:00:00Z",
        ),
    ]
    accepted_before = service.metric("recplat_feedback_events_total")
    with service.client() as client:
        for body, message in cases:
            response = client.post("/feedback", json=body)
            assert response.status_code == 422, (body, response.text)
            assert response.json()["detail"].startswith(message), response.json()
        # The edges of the window are accepted, with a clock skew of a few minutes.
        for ts in ("2000-01-01T00:00:00Z", (datetime.now(UTC) + timedelta(minutes=50)).isoformat()):
            response = client.post("/feedback", json={**event, "ts": ts})
            assert (response.status_code, response.json()) == (202, {"accepted": 1}), ts
    assert service.metric("recplat_feedback_events_total") == accepted_before + 2


def test_feedback_single_and_batch_are_accepted(service: RankingService) -> None:
    event = {"user_id": "u-1", "item_id": "i-1", "type": "click"}
    with service.client() as client:
        one = client.post("/feedback", json=event)
        batch = client.post("/feedback", json={"events": [event, {**event, "type": "dismiss"}]})
    assert (one.status_code, one.json()) == (202, {"accepted": 1})
    assert (batch.status_code, batch.json()) == (202, {"accepted": 2})
    assert service.metric("recplat_feedback_events_total", type="dismiss") >= 1


def test_model_endpoint_and_metrics_describe_what_serves(
    service: RankingService, rankers: RegisteredRankers
) -> None:
    info = httpx.get(f"{service.url}/model").json()
    assert info["fallback"] is False
    assert (info["exploration"], info["default_k"], info["experiment_id"]) == (0.0, 20, None)
    by_alias = {m["alias"]: m for m in info["models"]}
    assert by_alias["champion"]["version"] == rankers.champion_version
    assert by_alias["challenger"]["version"] == rankers.challenger_version
    assert by_alias["champion"]["data_from"] == "2025-12-25"
    assert by_alias["champion"]["offline_metrics"] == {
        "model.ndcg_at_10": 0.61,
        "popularity.ndcg_at_10": 0.42,
    }
    with service.client() as client:
        client.post("/rank", json={"user_id": "u-1", "candidates": ["i-1"]})
    assert service.metric("recplat_model_version", alias="champion") == float(
        rankers.champion_version
    )
    assert service.metric("recplat_rank_requests_total", outcome="ok") >= 1
    assert service.metric("recplat_rank_latency_seconds_count") >= 1
    assert service.metric("recplat_rank_batch_size_count") >= 1
    assert service.metric("recplat_model_age_seconds", alias="champion") > 0
    assert {m["scorer"] for m in info["models"]} == {"compiled-trees"}
