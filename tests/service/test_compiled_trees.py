"""Compiled trees score like LightGBM itself, and refuse the models they cannot score exactly."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
from ranking_service.compiled_trees import NotCompilableError, compile_trees
from ranking_service.model_store import RankingModel

from recplat.testing.rankers import tiny_snapshot, train_ranker

pytestmark = pytest.mark.fast


def _train(
    params: dict, rounds: int, *, features: int = 6, rows: int = 3_000, seed: int = 0
) -> tuple[lgb.Booster, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, (rows, features))
    x[:, 0] = rng.integers(-3, 4, rows)  # few distinct values: splits share thresholds
    y = x[:, 0] * 0.5 + np.sin(x[:, 1]) + x[:, 2] * x[:, 3] * 0.1 + rng.normal(0, 0.3, rows)
    if params.get("objective") == "lambdarank":
        y = np.clip(np.round(y - y.min()), 0, 4).astype(int)
        data = lgb.Dataset(x, y, group=[30] * (rows // 30))
    else:
        data = lgb.Dataset(x, y)
    return lgb.train({"verbose": -1, "seed": seed, **params}, data, rounds), x


@pytest.mark.parametrize(
    ("params", "rounds"),
    [
        ({"objective": "lambdarank", "num_leaves": 31}, 200),
        ({"objective": "lambdarank", "num_leaves": 2}, 30),
        ({"objective": "regression", "num_leaves": 63, "min_data_in_leaf": 5}, 40),
        ({"objective": "regression", "num_leaves": 7, "learning_rate": 0.3}, 700),
    ],
    ids=["lambdarank-31-leaves", "stumps", "63-leaves", "700-trees-in-blocks"],
)
def test_scores_equal_lightgbm(params: dict, rounds: int) -> None:
    booster, x = _train(params, rounds)
    compiled = compile_trees(booster)
    rng = np.random.default_rng(1)
    probes = np.vstack(
        [
            x[:500],
            rng.normal(0, 10, (500, x.shape[1])),  # far outside the training range too
            np.where(rng.random((200, x.shape[1])) < 0.3, np.nan, x[:200]),  # NaN is 0
            np.full((1, x.shape[1]), 1e-40),  # LightGBM's zero threshold
        ]
    )
    expected = booster.predict(probes)
    got = compiled.predict(probes.astype(np.float32).astype(np.float64))
    expected32 = booster.predict(probes.astype(np.float32))
    np.testing.assert_allclose(compiled.predict(probes), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got, expected32, rtol=0, atol=1e-9)
    assert compiled.num_trees == booster.num_trees()
    compiled.verify(booster, x[:100])


def test_rows_exactly_on_a_threshold_go_left() -> None:
    booster, x = _train({"objective": "regression", "num_leaves": 15}, 50)
    compiled = compile_trees(booster)
    thresholds = [
        node["threshold"]
        for tree in booster.dump_model()["tree_info"]
        for node in _splits(tree["tree_structure"])
    ]
    rows = np.tile(x[:1], (len(thresholds), 1))
    for i, threshold in enumerate(thresholds):
        rows[i, :] = threshold  # every feature on some split's boundary
    np.testing.assert_allclose(compiled.predict(rows), booster.predict(rows), rtol=0, atol=1e-9)


def _splits(node: dict) -> list[dict]:
    if "split_index" not in node:
        return []
    return [node, *_splits(node["left_child"]), *_splits(node["right_child"])]


def test_a_model_of_single_leaf_trees_scores_its_constant() -> None:
    x = np.random.default_rng(0).random((200, 3))
    booster = lgb.train(
        {"objective": "regression", "verbose": -1, "min_data_in_leaf": 1_000},
        lgb.Dataset(x, np.arange(200.0)),
        5,
    )
    np.testing.assert_allclose(compile_trees(booster).predict(x), booster.predict(x), atol=1e-9)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("categorical", "categorical split"),
        ("missing-values", "missing-value branch"),
        ("128-leaves", "128 leaves"),
        ("multiclass", "multiclass"),
        ("linear-trees", "linear trees"),
    ],
)
def test_models_it_cannot_score_exactly_are_refused(kind: str, reason: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (3_000, 4))
    y = x[:, 0] + rng.normal(0, 0.1, 3_000)
    params: dict = {"objective": "regression", "verbose": -1}
    data_args: dict = {}
    if kind == "categorical":
        x[:, 1] = rng.integers(0, 20, 3_000)
        y += x[:, 1] % 3
        data_args = {"categorical_feature": [1]}
    elif kind == "missing-values":
        x[rng.random(3_000) < 0.2, 0] = np.nan
        y = np.nan_to_num(x[:, 0], nan=5.0)
    elif kind == "linear-trees":
        params |= {"linear_tree": True}
    elif kind == "128-leaves":
        params |= {"num_leaves": 128, "min_data_in_leaf": 2}
    else:
        params |= {"objective": "multiclass", "num_class": 3}
        y = rng.integers(0, 3, 3_000).astype(np.float64)
    booster = lgb.train(params, lgb.Dataset(x, y, **data_args), 10)
    with pytest.raises(NotCompilableError, match=reason):
        compile_trees(booster)


def test_verify_refuses_tables_that_disagree_with_the_booster() -> None:
    booster, x = _train({"objective": "regression", "num_leaves": 7}, 20)
    other, _ = _train({"objective": "regression", "num_leaves": 7}, 20, seed=1)
    with pytest.raises(NotCompilableError, match="differ from LightGBM"):
        compile_trees(other).verify(booster, x[:50])


def test_a_served_model_scores_with_compiled_trees_equal_to_lightgbm() -> None:
    snapshot = tiny_snapshot()
    model = RankingModel("m", "1", "champion", "run", train_ranker(rounds=30), snapshot, 0)
    compiled = model.with_compiled_trees()
    assert (model.scorer, compiled.scorer) == ("lightgbm", "compiled-trees")
    candidates = [*snapshot.item_ids, "new-item"]
    for user in ("u-1", "u-9", "never-seen"):
        features = model.features(user, candidates, ["i-3", "i-4"])
        np.testing.assert_allclose(
            compiled.score(features), model.booster.predict(features), rtol=0, atol=1e-9
        )
