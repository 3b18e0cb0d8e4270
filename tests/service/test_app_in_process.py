"""What a client of the ranking service sees, in process (fast tier): FastAPI's TestClient on
`create_app`, with real LightGBM models that the app's own reloader loads from a real MLflow
registry kept in a folder (SQLite), and the event log shipped to a real `file://` lake.

Each test checks one behaviour: the ranked list, the error a bad request gets (status and exact
detail), the fallback without a model, and the impression rows training reads. The same
service over real HTTP (uvicorn, the MLflow server) is in the end-to-end modules:
test_rank_api.py, test_exploration.py, test_hot_reload.py and the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow import MlflowClient
from ranking_features import build_features
from ranking_features.assignment import experiment_arm
from ranking_features.events import POLICY_EXPLOIT, POLICY_EXPLORE

from recplat.testing.rankers import (
    RegisteredRankers,
    register_champion_and_challenger,
    tiny_snapshot,
)
from tests.service.in_process import InProcessService

pytestmark = pytest.mark.fast

CANDIDATES = [f"i-{n}" for n in range(0, 60, 2)] + ["new-item-1", "new-item-2"]
MISSING_KEY = "missing API key: send the header 'Authorization: Bearer <brand API key>'"


@pytest.fixture(scope="module")
def serving(
    local_rankers: RegisteredRankers, local_registry: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessService]:
    """The brand's app: champion and challenger loaded, 30 % challenger traffic (no experiment
    runs: the challenger has no `experiment_id`), no exploration, at most 100 candidates."""
    with InProcessService(
        tmp_path_factory.mktemp("serving"),
        brand=local_rankers.brand,
        tracking_uri=local_registry,
        challenger_traffic=0.3,
        exploration=0.0,
        max_candidates=100,
        max_body_bytes=65_536,
    ) as app:
        yield app


def champion_order(
    rankers: RegisteredRankers, user: str, candidates: list[str], recent: list[str]
) -> tuple[list[str], np.ndarray]:
    """The candidates in the champion's order, and its scores in that order."""
    features = build_features(rankers.snapshot, user, candidates, recent)
    scores = np.asarray(rankers.champion.predict(features), dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    return [candidates[i] for i in order], scores[order]


# ------------------------------------------------------------------------------ ranking
@pytest.mark.parametrize("user", ["u-1", "never-seen-user"])
def test_rank_without_k_answers_the_champions_top_default_k_with_its_scores(
    serving: InProcessService, local_rankers: RegisteredRankers, user: str
) -> None:
    recent = ["i-3", "i-4"]
    response = serving.rank(user_id=user, candidates=CANDIDATES, recent_items=recent)
    assert response.status_code == 200, response.text
    answer = response.json()
    order, scores = champion_order(local_rankers, user, CANDIDATES, recent)
    assert [item["item_id"] for item in answer["items"]] == order[:20]
    assert np.allclose([item["score"] for item in answer["items"]], scores[:20], atol=1e-9)
    assert answer["model"] == {
        "name": local_rankers.model_name,
        "version": local_rankers.champion_version,
        "variant": "champion",
    }
    assert answer["fallback"] is False
    assert len(answer["request_id"]) == 32


def test_k_cuts_the_list_and_never_makes_it_longer_than_the_candidates(
    serving: InProcessService, local_rankers: RegisteredRankers
) -> None:
    order, _ = champion_order(local_rankers, "u-2", CANDIDATES, [])
    lists = {
        k: [item["item_id"] for item in serving.rank(user_id="u-2", candidates=CANDIDATES, k=k)
            .json()["items"]]
        for k in (1, 5, 99)
    }  # fmt: skip
    assert lists == {1: order[:1], 5: order[:5], 99: order}
    few = serving.rank(user_id="u-2", candidates=CANDIDATES[:3]).json()["items"]
    assert len(few) == 3


def test_model_endpoint_shows_both_loaded_versions_and_the_serving_settings(
    serving: InProcessService, local_rankers: RegisteredRankers
) -> None:
    info = serving.client.get("/model").json()
    assert {key: info[key] for key in ("brand", "fallback", "challenger_traffic")} == {
        "brand": local_rankers.brand,
        "fallback": False,
        "challenger_traffic": 0.3,
    }
    assert (info["exploration"], info["default_k"], info["experiment_id"]) == (0.0, 20, None)
    by_alias = {model["alias"]: model for model in info["models"]}
    assert {alias: model["version"] for alias, model in by_alias.items()} == {
        "champion": local_rankers.champion_version,
        "challenger": local_rankers.challenger_version,
    }
    champion = by_alias["champion"]
    assert (champion["data_from"], champion["data_to"]) == ("2025-12-25", "2026-01-01")
    # The training job's own keys (biased.*, ope.*): GET /model shows what a real run logged.
    assert champion["offline_metrics"] == {
        "biased.model.ndcg_at_10": 0.61,
        "biased.popularity.ndcg_at_10": 0.42,
    }
    assert {model["scorer"] for model in info["models"]} == {"compiled-trees"}
    assert serving.client.get("/readyz").json() == {"status": "ready"}
    assert serving.client.get("/healthz").json() == {"status": "ok"}


def test_rank_is_documented_with_its_body_limits_and_security(serving: InProcessService) -> None:
    spec = serving.client.get("/openapi.json").json()
    operation = spec["paths"]["/rank"]["post"]
    assert operation["security"] == [{"HTTPBearer": []}]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["user_id", "candidates"]
    assert schema["properties"]["candidates"]["maxItems"] == 100
    assert schema["examples"]
    response = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert response == {"$ref": "#/components/schemas/RankResponse"}
    assert {"401", "403", "413", "422"} <= set(operation["responses"])


# -------------------------------------------------------------------------- the API key
BODIES = {
    "/rank": {"user_id": "u-1", "candidates": ["i-1"]},
    "/feedback": {"user_id": "u-1", "item_id": "i-1", "type": "click"},
}


@pytest.mark.parametrize("path", BODIES)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Bearer   ", "Basic {key}", "{key}"],
    ids=["no-header", "no-token", "blank-token", "basic-scheme", "no-scheme"],
)  # fmt: skip
def test_a_request_without_a_bearer_key_gets_401_saying_how_to_send_it(
    serving: InProcessService, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    headers = {name: value.format(key=serving.api_key) for name, value in headers.items()}
    response = serving.client.post(path, json=BODIES[path], headers=headers)
    assert (response.status_code, response.json()) == (401, {"detail": MISSING_KEY})
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", BODIES)
def test_a_wrong_api_key_gets_403(serving: InProcessService, path: str) -> None:
    response = serving.client.post(
        path, json=BODIES[path], headers={"Authorization": "Bearer not-it"}
    )
    assert (response.status_code, response.json()) == (
        403,
        {"detail": "invalid API key for this brand"},
    )


def test_the_bearer_scheme_is_case_insensitive(serving: InProcessService) -> None:
    headers = {"Authorization": f"bearer {serving.api_key}"}
    response = serving.client.post(
        "/rank", json={"user_id": "u-1", "candidates": ["i-1"]}, headers=headers
    )
    assert response.status_code == 200, response.text


def test_refused_rank_requests_are_counted_as_the_clients_fault_never_as_errors(
    serving: InProcessService,
) -> None:
    def counts() -> dict[str, float]:
        return {
            outcome: serving.metric("recplat_rank_requests_total", outcome=outcome)
            for outcome in ("unauthorized", "invalid", "too_large", "error")
        }

    before = counts()
    serving.client.post("/rank", json={"user_id": "u-1", "candidates": ["i-1"]})
    serving.rank(user_id="u-1", candidates=[])
    serving.rank(user_id="u-1", candidates=["i-1"], context={"pad": "x" * 70_000})
    after = counts()
    assert {outcome: after[outcome] - before[outcome] for outcome in after} == {
        "unauthorized": 1,
        "invalid": 1,
        "too_large": 1,
        "error": 0,
    }


# ------------------------------------------------------------------------ invalid bodies
@pytest.mark.parametrize(
    ("path", "body", "detail"),
    [
        ("/rank", {"user_id": "u-1", "candidates": [f"i-{n}" for n in range(101)]},
         "candidates: List should have at most 100 items after validation, not 101"),
        ("/rank", {"user_id": "u-1", "candidates": ["i-1", "i-2", "i-1"]},
         "candidates: item ids must be unique; duplicated: i-1"),
        ("/rank", {"user_id": "u-1", "candidates": []},
         "candidates: List should have at least 1 item after validation, not 0"),
        ("/rank", {"candidates": ["i-1"]}, "user_id: Field required"),
        ("/rank", {"user_id": "u", "candidates": ["i-1"], "k": 0},
         "k: Input should be greater than or equal to 1"),
        ("/rank", {"user_id": "u", "candidates": ["i-1"], "recent_items": ["i-1"] * 101},
         "recent_items: List should have at most 100 items after validation, not 101"),
        ("/rank", {"user_id": "u", "candidates": ["i-1"], "page": 2},
         "page: Extra inputs are not permitted"),
        ("/feedback", {"events": [{"user_id": "u", "item_id": "i", "type": "like"}]},
         "events[0].type: Input should be 'click', 'conversion' or 'dismiss'"),
        ("/feedback", {"user_id": "u", "item_id": "i", "type": "click",
                       "ts": "2025-01-01T10:00:00"},
         "ts: Input should have timezone info"),
        ("/feedback", {"user_id": "u", "item_id": "i", "type": "click",
                       "ts": "1999-12-31T23:59:59Z"},
         "ts: must be from 2000-01-01T00:00:00Z to 1 hour past the server's clock, "
         "got 1999-12-31T23:59:59+00:00"),
        ("/feedback", {"events": [{"user_id": "u", "item_id": "i", "type": "click"},
                                  {"user_id": "u", "item_id": "i", "type": "click",
                                   "ts": "9999-12-31T23:59:59-12:00"}]},
         "events[1].ts: must be from 2000-01-01T00:00:00Z to 1 hour past the server's clock, "
         "got 9999-12-31T23:59:59-12:00"),
    ],
    ids=["too-many-candidates", "duplicate-candidates", "no-candidates", "no-user",
         "k-zero", "too-many-recent-items", "unknown-field", "feedback-type",
         "naive-ts", "ts-before-2000", "ts-far-future-in-a-batch"],
)  # fmt: skip
def test_an_invalid_body_gets_422_naming_the_field(
    serving: InProcessService, path: str, body: dict[str, Any], detail: str
) -> None:
    response = serving.client.post(path, json=body, headers=serving.auth)
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == detail


def test_feedback_more_than_an_hour_ahead_of_the_clock_is_refused_and_just_under_is_not(
    serving: InProcessService,
) -> None:
    event = {"user_id": "u", "item_id": "i", "type": "click"}
    ahead = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    skewed = (datetime.now(UTC) + timedelta(minutes=50)).isoformat()
    refused = serving.feedback({**event, "ts": ahead})
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        "ts: must be from 2000-01-01T00:00:00Z to 1 hour past the server's clock, got "
        + datetime.fromisoformat(ahead).isoformat()
    )
    for ts in ("2000-01-01T00:00:00Z", skewed):
        accepted = serving.feedback({**event, "ts": ts})
        assert (accepted.status_code, accepted.json()) == (202, {"accepted": 1}), ts


def test_a_body_that_is_not_json_gets_422_asking_for_json(serving: InProcessService) -> None:
    form = serving.client.post(
        "/rank", content=b"user_id=u-1", headers={**serving.auth, "Content-Type": "text/plain"}
    )
    assert (form.status_code, form.json()["detail"]) == (
        422,
        "body: expected a JSON object; send it with 'Content-Type: application/json'",
    )
    broken = serving.client.post(
        "/rank",
        content=b'{"user_id": "u-1", "candidates": [',
        headers={**serving.auth, "Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["field"] == "body"
    assert broken.json()["detail"].startswith("body: Invalid JSON: EOF while parsing a list")


def test_a_json_media_type_with_a_suffix_is_json(serving: InProcessService) -> None:
    response = serving.client.post(
        "/rank",
        content=b'{"user_id": "u-1", "candidates": ["i-1"]}',
        headers={**serving.auth, "Content-Type": "application/vnd.recplat+json; charset=utf-8"},
    )
    assert response.status_code == 200, response.text


def test_a_body_over_the_size_limit_gets_413(serving: InProcessService) -> None:
    response = serving.rank(user_id="u-1", candidates=["i-1"], context={"pad": "x" * 70_000})
    assert (response.status_code, response.json()) == (
        413,
        {"detail": "request body too large: at most 65536 bytes are accepted"},
    )


# ----------------------------------------------------------------- fallback without model
def test_without_a_registry_the_fallback_keeps_the_given_order_and_says_so(
    tmp_path: Path,
) -> None:
    with InProcessService(tmp_path, brand="ip-no-registry", exploration=0.2) as app:
        assert app.client.get("/readyz").json() == {"status": "ready-fallback"}
        answers = [app.rank(user_id=f"u-{n}", candidates=CANDIDATES, k=5).json() for n in range(50)]
        info = app.client.get("/model").json()
        assert app.metric("recplat_fallback_total", reason="no_model") == 50
        assert app.metric("recplat_rank_requests_total", outcome="fallback") == 50
        assert app.metric("recplat_rank_explored_total") == 0
    assert {(a["fallback"], tuple(a["model"].values())) for a in answers} == {
        (True, (None, None, "fallback"))
    }
    # No snapshot to rank by popularity: every answer is the first k candidates, never shuffled
    # (the fallback does not explore, whatever the brand's exploration share).
    assert {tuple(item["item_id"] for item in a["items"]) for a in answers} == {
        tuple(CANDIDATES[:5])
    }
    assert (info["fallback"], info["models"]) == (True, [])
    rows = app.lake_rows("impressions")
    assert len(rows) == 250
    assert {(r["policy"], r["propensity"], r["pool"], r["variant"]) for r in rows} == {
        (POLICY_EXPLOIT, 1.0, None, "fallback")
    }


def test_the_fallback_ranks_by_the_snapshots_clicks_when_it_has_one(tmp_path: Path) -> None:
    snapshot = tiny_snapshot(seed=3)
    snapshot.save(tmp_path / "snapshot.json")
    with InProcessService(
        tmp_path / "app",
        brand="ip-fallback-snap",
        fallback_snapshot=str(tmp_path / "snapshot.json"),
    ) as app:
        answer = app.rank(user_id="u-1", candidates=CANDIDATES).json()
    clicks = dict(zip(snapshot.item_ids, snapshot.item_clicks.tolist(), strict=True))
    expected = sorted(CANDIDATES, key=lambda item: -clicks.get(item, 0.0))[:20]
    assert [item["item_id"] for item in answer["items"]] == expected
    assert [item["score"] for item in answer["items"]] == [clicks.get(i, 0.0) for i in expected]
    assert answer["fallback"] is True


def test_a_registry_without_the_brands_model_serves_the_fallback(
    local_registry: str, tmp_path: Path
) -> None:
    with InProcessService(tmp_path, brand="ip-unregistered", tracking_uri=local_registry) as app:
        assert app.client.get("/readyz").json() == {"status": "ready-fallback"}
        answer = app.rank(user_id="u-1", candidates=["i-1", "i-2"]).json()
    assert (answer["fallback"], answer["model"]["variant"]) == (True, "fallback")


# ------------------------------------------------------------- what lands in the lake
EXPERIMENT = "exp-ip-v2-20261201T000000Z"
DEFAULT_K, POOL = 4, 8


@pytest.fixture(scope="module")
def experimenting(local_registry: str) -> RegisteredRankers:
    """A champion and a challenger that runs online experiment `EXPERIMENT`."""
    rankers = register_champion_and_challenger(local_registry, "ip-explore-ranker")
    MlflowClient(tracking_uri=local_registry).set_model_version_tag(
        rankers.model_name, rankers.challenger_version, "experiment_id", EXPERIMENT
    )
    return rankers


def test_impressions_log_the_policy_propensity_pool_variant_and_experiment_of_every_list(
    experimenting: RegisteredRankers, local_registry: str, tmp_path: Path
) -> None:
    users = [f"u-{n}" for n in range(20)]
    candidates = CANDIDATES[:12]
    with InProcessService(
        tmp_path,
        brand=experimenting.brand,
        tracking_uri=local_registry,
        exploration=0.2,
        exploration_seed=20261201,
        default_k=DEFAULT_K,
        challenger_traffic=0.3,
    ) as app:
        answers = [
            (user, app.rank(user_id=user, candidates=candidates).json())
            for n in range(400)
            for user in [users[n % len(users)]]
        ]
        explored_metric = app.metric("recplat_rank_explored_total")
        info = app.client.get("/model").json()
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in app.lake_rows("impressions"):
        rows.setdefault(row["request_id"], []).append(row)

    boosters = {"champion": experimenting.champion, "challenger": experimenting.challenger}
    versions = {
        "champion": experimenting.champion_version,
        "challenger": experimenting.challenger_version,
    }
    explored = 0
    for user, answer in answers:
        variant = answer["model"]["variant"]
        assert variant == experiment_arm(EXPERIMENT, user, 0.3), user
        features = build_features(experimenting.snapshot, user, candidates)
        scores = np.asarray(boosters[variant].predict(features), dtype=np.float64)
        model_order = [candidates[i] for i in np.argsort(-scores, kind="stable")]
        shown = [item["item_id"] for item in answer["items"]]
        logged = sorted(rows[answer["request_id"]], key=lambda row: row["position"])
        assert [r["item_id"] for r in logged] == shown, "one row per returned item, in order"
        assert [r["position"] for r in logged] == list(range(1, DEFAULT_K + 1))
        assert {(r["variant"], r["model_version"], r["experiment_id"]) for r in logged} == {
            (variant, versions[variant], EXPERIMENT)
        }
        (policy,) = {r["policy"] for r in logged}
        if policy == POLICY_EXPLOIT:
            assert shown == model_order[:DEFAULT_K]
            assert {(r["propensity"], r["pool"]) for r in logged} == {(1.0, None)}
        else:
            assert policy == POLICY_EXPLORE
            explored += 1
            assert all(r["propensity"] == 1 / POOL for r in logged)
            assert all(r["pool"] == model_order[:POOL] for r in logged)
            assert len(set(shown)) == DEFAULT_K and set(shown) <= set(model_order[:POOL])
    # 20 % of 400 requests, within 4 sigma; the seed makes the count reproducible.
    assert abs(explored - 80) <= 4 * np.sqrt(400 * 0.2 * 0.8), explored
    assert explored_metric == explored
    assert (info["exploration"], info["default_k"], info["experiment_id"]) == (
        0.2,
        DEFAULT_K,
        EXPERIMENT,
    )


def test_acknowledged_feedback_lands_in_the_lake_with_the_brand(tmp_path: Path) -> None:
    event = {"user_id": "u-1", "item_id": "i-1", "type": "click", "request_id": "r-1"}
    with InProcessService(tmp_path, brand="ip-feedback") as app:
        one = app.feedback({**event, "event_id": "e-1", "ts": "2026-01-01T10:00:00Z"})
        batch = app.feedback(
            {"events": [{**event, "event_id": "e-2"}, {**event, "type": "dismiss"}]}
        )
        assert (one.status_code, one.json()) == (202, {"accepted": 1})
        assert (batch.status_code, batch.json()) == (202, {"accepted": 2})
        assert app.metric("recplat_feedback_events_total", type="dismiss") == 1
    rows = {row["event_id"]: row for row in app.lake_rows("feedback")}
    assert len(rows) == 3, "an event without event_id gets one"
    assert rows["e-1"]["ts"] == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert {
        (r["brand"], r["user_id"], r["item_id"], r["request_id"], r["type"]) for r in rows.values()
    } == {
        ("ip-feedback", "u-1", "i-1", "r-1", "click"),
        ("ip-feedback", "u-1", "i-1", "r-1", "dismiss"),
    }
