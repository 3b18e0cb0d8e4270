"""The ranking service as deployed, over real HTTP (uvicorn) with the MLflow server: the ranked
list, the variant, and what /model and /metrics report. The routes' other behaviour (the API
key, invalid bodies, limits, feedback, the fallback) is tested in process, in the fast tier:
test_app_in_process.py."""

from __future__ import annotations

import httpx
import numpy as np
from ranking_features import build_features

from recplat.testing.rankers import RegisteredRankers
from recplat.testing.service_process import RankingService

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
        "biased.model.ndcg_at_10": 0.61,
        "biased.popularity.ndcg_at_10": 0.42,
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
