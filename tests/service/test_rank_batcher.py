"""The rank batcher: requests that arrive together are scored in one call, each with the scores
it would get alone, and a request that cannot be scored fails alone."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from ranking_features import build_features
from ranking_service.model_store import RankingModel
from ranking_service.rank_batcher import RankBatcher
from ranking_service.scoring_pool import ScoringPool

from recplat.testing.rankers import AS_OF, tiny_snapshot, train_ranker

pytestmark = pytest.mark.fast

REQUESTS = [
    ("u-1", ["i-1", "i-2", "i-3", "new-1"], ["i-2"]),
    ("u-7", [f"i-{n}" for n in range(40)], ["i-5", "i-9", "new-2"]),
    ("never-seen", ["new-1", "i-4"], []),
    ("u-3", ["i-8"], ["i-8"]),
]


class _CountingModel(RankingModel):
    def score(self, features: np.ndarray) -> np.ndarray:
        self.calls.append(len(features))  # type: ignore[attr-defined]
        if len(features) > 3 and getattr(self, "fail_batches", False):
            raise ValueError("batch too large")  # a request of more than 3 candidates
        return super().score(features)


def _model(compiled: bool) -> RankingModel:
    model: RankingModel = _CountingModel(
        "m", "1", "champion", "run", train_ranker(rounds=20), tiny_snapshot(), 0
    )
    if compiled:
        model = model.with_compiled_trees()
        assert model.scorer == "compiled-trees"
    object.__setattr__(model, "calls", [])
    return model


async def _rank_together(batcher: RankBatcher, requests: list, model: RankingModel) -> list:
    return await asyncio.gather(
        *(batcher.score(model, u, c, r, now=AS_OF + n) for n, (u, c, r) in enumerate(requests)),
        return_exceptions=True,
    )


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled-trees", "lightgbm"])
def test_requests_arriving_together_are_scored_in_one_call_with_their_own_scores(
    compiled: bool,
) -> None:
    model = _model(compiled)
    pool = ScoringPool()
    sizes: list[int] = []
    try:
        results = asyncio.run(_rank_together(RankBatcher(pool, sizes.append), REQUESTS, model))
    finally:
        pool.shutdown()
    assert model.calls == [sum(len(c) for _, c, _ in REQUESTS)]  # type: ignore[attr-defined]
    assert sizes == [len(REQUESTS)]
    for n, ((user, candidates, recent), scores) in enumerate(zip(REQUESTS, results, strict=True)):
        features = build_features(model.snapshot, user, candidates, recent, now=AS_OF + n)
        alone = model.booster.predict(features, num_threads=1)
        assert scores.shape == (len(candidates),)
        np.testing.assert_allclose(scores, alone, rtol=0, atol=1e-9)


def test_requests_arriving_apart_are_scored_apart() -> None:
    model = _model(compiled=True)
    pool = ScoringPool()
    batcher = RankBatcher(pool)

    async def one_after_another() -> None:
        for n, (user, candidates, recent) in enumerate(REQUESTS):
            await batcher.score(model, user, candidates, recent, now=AS_OF + n)

    try:
        asyncio.run(one_after_another())
    finally:
        pool.shutdown()
    assert model.calls == [len(c) for _, c, _ in REQUESTS]  # type: ignore[attr-defined]


def test_a_failed_batch_is_retried_request_by_request_and_only_the_bad_one_fails() -> None:
    model = _model(compiled=True)
    object.__setattr__(model, "fail_batches", True)
    pool = ScoringPool()
    try:
        results = asyncio.run(_rank_together(RankBatcher(pool), REQUESTS, model))
    finally:
        pool.shutdown()
    outcomes = ["error" if isinstance(r, Exception) else "scores" for r in results]
    # The batch (47 rows) fails; alone, the requests of over 3 candidates still fail.
    assert outcomes == ["error", "error", "scores", "scores"]
    assert isinstance(results[1], ValueError)
    assert model.calls[0] == 47  # type: ignore[attr-defined]
