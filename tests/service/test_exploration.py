"""Exploration with logged propensities (docs/architecture.md, "Impressions and exploration"):
the explored share, the pool, the uniform permutation and what lands in the lake."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import lightgbm as lgb
import numpy as np
import pyarrow.dataset as ds
import pytest
from mlflow import MlflowClient
from ranking_features import build_features
from ranking_features.assignment import experiment_bucket
from ranking_features.brand import Serving
from ranking_features.events import IMPRESSION_SCHEMA, POLICY_EXPLOIT, POLICY_EXPLORE
from ranking_service.exploration import Exploration
from ranking_service.settings import Settings, SettingsError, load_settings

from recplat.testing.rankers import RegisteredRankers
from recplat.testing.servers import MlflowServer, wait_until
from recplat.testing.service_process import RankingService

SHARE = 0.2
DEFAULT_K = 4
POOL = 2 * DEFAULT_K
CANDIDATES = [f"i-{n}" for n in range(0, 48, 4)]
USERS = [f"u-{n}" for n in range(20)]
REQUESTS = 3000
EXPERIMENT = "exp-42"


def within_four_sigma(count: int, trials: int, p: float) -> bool:
    return abs(count - trials * p) <= 4 * math.sqrt(trials * p * (1 - p))


def assert_uniform_over_pool(cells: np.ndarray) -> None:
    """`cells[r, p]`: how often the pool's r-th item was shown at position p+1, over explored
    lists. Each is one pool item's chance, 1/m, at each position (4 sigma of binomial noise)."""
    m, k = cells.shape
    shown = int(cells[:, 0].sum())
    assert (cells.sum(axis=0) == shown).all(), "every explored list fills every position"
    for rank in range(m):
        for position in range(k):
            count = int(cells[rank, position])
            assert within_four_sigma(count, shown, 1 / m), (
                f"pool item {rank} at position {position + 1}: {count} of {shown} lists, "
                f"expected {shown / m:.0f}"
            )


# --------------------------------------------------------------------------- in process
@pytest.mark.fast
def test_explored_lists_show_each_pool_item_at_each_position_with_the_logged_propensity() -> None:
    exploration = Exploration(share=1.0, seed=3)
    order = np.array([7, 2, 9, 0, 5, 1, 3, 8, 4, 6])
    k, m = 3, 6
    cells = np.zeros((m, k), dtype=int)
    for _ in range(30_000):
        shown = exploration.choose(order, k, explorable=True)
        assert shown.policy == POLICY_EXPLORE
        assert shown.pool is not None and shown.pool.tolist() == order[:m].tolist()
        assert len(set(shown.shown.tolist())) == k
        pool_rank = {item: rank for rank, item in enumerate(shown.pool.tolist())}
        for position, item in enumerate(shown.shown.tolist()):
            cells[pool_rank[item], position] += 1
        assert shown.propensity == 1 / m
    # The logged propensities of each position sum to 1 over the pool ...
    assert m * (1 / m) == pytest.approx(1.0)
    # ... and are the frequencies the randomisation shows each item at each position with.
    assert_uniform_over_pool(cells)


@pytest.mark.fast
def test_fewer_candidates_than_the_pool_explore_all_of_them() -> None:
    exploration = Exploration(share=1.0, seed=5)
    seen = Counter(
        tuple(exploration.choose(np.array([2, 0, 1]), 5, explorable=True).shown.tolist())
        for _ in range(6_000)
    )
    # k = 5 of 3 candidates: k is 3, the pool all 3, every one of the 6 orders equally likely.
    assert len(seen) == 6
    assert all(within_four_sigma(n, 6_000, 1 / 6) for n in seen.values()), seen
    assert exploration.choose(np.array([2, 0, 1]), 5, explorable=True).propensity == 1 / 3


@pytest.mark.fast
def test_the_explored_share_is_the_configured_one_and_the_fallback_never_explores() -> None:
    order = np.arange(50)
    exploration = Exploration(share=0.05, seed=11)
    policies = Counter(exploration.choose(order, 20, explorable=True).policy for _ in range(40_000))
    assert within_four_sigma(policies[POLICY_EXPLORE], 40_000, 0.05), policies
    fallback = {exploration.choose(order, 20, explorable=False).policy for _ in range(2_000)}
    assert fallback == {POLICY_EXPLOIT}
    exploit = Exploration(share=0.0).choose(order[::-1], 20, explorable=True)
    assert exploit.shown.tolist() == order[::-1][:20].tolist()
    assert (exploit.policy, exploit.propensity, exploit.pool) == (POLICY_EXPLOIT, 1.0, None)


@pytest.mark.fast
def test_the_services_defaults_and_bounds_are_the_brand_files() -> None:
    service = Settings.model_json_schema()["properties"]
    brand = Serving.model_json_schema()["properties"]
    for name in ("exploration", "default_k"):
        bounds = ("default", "minimum", "maximum")
        assert {b: service[name].get(b) for b in bounds} == {
            b: brand[name].get(b) for b in bounds
        }, name


@pytest.mark.fast
@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RECPLAT_EXPLORATION", "0.3", "RECPLAT_EXPLORATION: Input should be less than or equal "
         "to 0.2"),
        ("RECPLAT_EXPLORATION", "-0.1", "RECPLAT_EXPLORATION: Input should be greater than or "
         "equal to 0"),
        ("RECPLAT_EXPLORATION", "5%", "RECPLAT_EXPLORATION: Input should be a valid number"),
        ("RECPLAT_DEFAULT_K", "0", "RECPLAT_DEFAULT_K: Input should be greater than or equal "
         "to 1"),
        ("RECPLAT_DEFAULT_K", "twenty", "RECPLAT_DEFAULT_K: Input should be a valid integer"),
    ],
)  # fmt: skip
def test_invalid_exploration_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv("RECPLAT_BRAND", "acme")
    monkeypatch.setenv("RECPLAT_LAKE_URI", f"file://{tmp_path}")
    monkeypatch.setenv("RECPLAT_API_KEY_FILE", str(tmp_path / "key"))
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value).startswith(f"invalid service environment: {message}"), error.value


# ------------------------------------------------------------------- a real service, HTTP
@pytest.fixture(scope="module")
def explored(
    rankers: RegisteredRankers,
    mlflow_server: MlflowServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RankingService]:
    """A service exploring 20 % of its requests (seeded), 4 items by default, 30 % of users on
    a challenger registered as experiment `exp-42`."""
    MlflowClient(tracking_uri=mlflow_server.tracking_uri).set_model_version_tag(
        rankers.model_name, rankers.challenger_version, "experiment_id", EXPERIMENT
    )
    workdir: Path = tmp_path_factory.mktemp("explore")
    running = RankingService(
        workdir,
        brand=rankers.model_name.removesuffix("-ranker"),
        lake_uri=f"file://{workdir / 'lake'}",
        tracking_uri=mlflow_server.tracking_uri,
        env={
            "RECPLAT_EXPLORATION": str(SHARE),
            "RECPLAT_EXPLORATION_SEED": "20261201",
            "RECPLAT_DEFAULT_K": str(DEFAULT_K),
            "RECPLAT_CHALLENGER_TRAFFIC": "0.3",
        },
    ).start()
    try:
        yield running
    finally:
        running.stop()


def lake_lists(lake: Path, request_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Each request's impression rows in the lake, by position (waits until all arrived)."""
    rows: dict[str, list[dict[str, Any]]] = {}

    def arrived() -> bool:
        nonlocal rows
        if not (lake / "events" / "impressions").exists():
            return False
        table = ds.dataset(lake / "events" / "impressions", format="parquet").to_table()
        assert table.select(IMPRESSION_SCHEMA.names).schema.equals(IMPRESSION_SCHEMA)
        rows = {}
        for row in table.to_pylist():
            rows.setdefault(row["request_id"], []).append(row)
        return request_ids <= rows.keys()

    wait_until(arrived, 60, f"{len(request_ids)} ranked lists in the lake")
    return {r: sorted(rows[r], key=lambda row: row["position"]) for r in request_ids}


def model_orders(
    rankers: RegisteredRankers,
) -> dict[tuple[str, str], tuple[list[str], dict[str, float]]]:
    """Per (user, variant): the candidates in the model's order, and their scores."""
    boosters: dict[str, lgb.Booster] = {
        "champion": rankers.champion,
        "challenger": rankers.challenger,
    }
    orders = {}
    for user in USERS:
        for variant, booster in boosters.items():
            features = build_features(rankers.snapshot, user, CANDIDATES)
            scores = np.asarray(booster.predict(features), dtype=np.float64)
            order = np.argsort(-scores, kind="stable")
            orders[user, variant] = (
                [CANDIDATES[i] for i in order],
                dict(zip(CANDIDATES, scores.tolist(), strict=True)),
            )
    return orders


def test_a_share_of_requests_explores_the_models_top_2k_uniformly_and_the_lake_logs_it(
    explored: RankingService, rankers: RegisteredRankers
) -> None:
    orders = model_orders(rankers)
    with explored.client() as client:
        answers = []
        for n in range(REQUESTS):
            user = USERS[n % len(USERS)]
            response = client.post("/rank", json={"user_id": user, "candidates": CANDIDATES})
            assert response.status_code == 200, response.text
            answers.append((user, response.json()))
    lists = lake_lists(explored.workdir / "lake", {a["request_id"] for _, a in answers})

    versions = {"champion": rankers.champion_version, "challenger": rankers.challenger_version}
    policies: Counter[str] = Counter()
    cells = np.zeros((POOL, DEFAULT_K), dtype=int)
    for user, answer in answers:
        variant = answer["model"]["variant"]
        assert variant == (
            "challenger" if experiment_bucket(EXPERIMENT, user) < 0.3 else "champion"
        )
        model_order, model_scores = orders[user, variant]
        rows = lists[answer["request_id"]]
        items = [i["item_id"] for i in answer["items"]]
        assert [r["item_id"] for r in rows] == items, "only the returned items are impressions"
        assert [r["position"] for r in rows] == list(range(1, DEFAULT_K + 1))
        # The caller gets the model's scores of the items shown, in the order shown.
        scores = [i["score"] for i in answer["items"]]
        assert np.allclose(scores, [model_scores[i] for i in items], rtol=0, atol=1e-6)
        policy = rows[0]["policy"]
        policies[policy] += 1
        for row in rows:
            assert row["policy"] == policy and row["variant"] == variant
            assert row["model_version"] == versions[variant]
            # Both arms of the running experiment log it.
            assert row["experiment_id"] == EXPERIMENT
        if policy == POLICY_EXPLOIT:
            assert items == model_order[:DEFAULT_K]
            assert all(r["propensity"] == 1.0 and r["pool"] is None for r in rows)
        else:
            assert policy == POLICY_EXPLORE
            pool = model_order[:POOL]
            assert all(r["propensity"] == 1 / POOL and r["pool"] == pool for r in rows)
            assert set(items) <= set(pool) and len(set(items)) == DEFAULT_K
            for position, item in enumerate(items):
                cells[pool.index(item), position] += 1

    assert within_four_sigma(policies[POLICY_EXPLORE], REQUESTS, SHARE), policies
    assert explored.metric("recplat_rank_explored_total") == policies[POLICY_EXPLORE]
    # Which pool item lands where does not depend on the model's order within the pool.
    assert_uniform_over_pool(cells)


def test_default_k_is_the_length_of_a_list_without_k(explored: RankingService) -> None:
    with explored.client() as client:
        lengths = {
            k: [
                len(client.post("/rank", json={"user_id": "u-3", **body}).json()["items"])
                for _ in range(30)
            ]
            for k, body in (
                ("none", {"candidates": CANDIDATES}),
                ("k=6", {"candidates": CANDIDATES, "k": 6}),
                ("3 candidates", {"candidates": CANDIDATES[:3]}),
            )
        }
    assert lengths == {"none": [DEFAULT_K] * 30, "k=6": [6] * 30, "3 candidates": [3] * 30}


def test_model_endpoint_shows_the_exploration_share_and_the_experiment(
    explored: RankingService, rankers: RegisteredRankers
) -> None:
    info = httpx.get(f"{explored.url}/model").json()
    assert (info["exploration"], info["default_k"]) == (SHARE, DEFAULT_K)
    assert info["experiment_id"] == EXPERIMENT
    by_alias = {m["alias"]: m["experiment_id"] for m in info["models"]}
    assert by_alias == {"champion": None, "challenger": EXPERIMENT}


def test_the_fallback_never_explores(tmp_path: Path) -> None:
    service = RankingService(
        tmp_path,
        brand="svc-fallback-explore",
        lake_uri=f"file://{tmp_path / 'lake'}",
        env={"RECPLAT_EXPLORATION": str(SHARE), "RECPLAT_DEFAULT_K": "3"},
    ).start()
    try:
        with service.client() as client:
            answers = [
                client.post("/rank", json={"user_id": f"u-{n}", "candidates": CANDIDATES}).json()
                for n in range(200)
            ]
        assert {a["model"]["variant"] for a in answers} == {"fallback"}
        # Without a snapshot the fallback keeps the given order: never a permutation of it.
        assert {tuple(i["item_id"] for i in a["items"]) for a in answers} == {tuple(CANDIDATES[:3])}
        lists = lake_lists(tmp_path / "lake", {a["request_id"] for a in answers})
        rows = [row for rows in lists.values() for row in rows]
        assert len(rows) == 600
        assert {(r["policy"], r["propensity"]) for r in rows} == {(POLICY_EXPLOIT, 1.0)}
        assert all(r["pool"] is None and r["experiment_id"] is None for r in rows)
        assert service.metric("recplat_rank_explored_total") == 0
    finally:
        service.stop()
