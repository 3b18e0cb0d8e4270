"""The scoring pool: scores are the model's own. LightGBM scores inline for a lone request and
on the scoring thread when requests arrive close together; compiled trees always inline."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from ranking_service.model_store import RankingModel
from ranking_service.scoring_pool import ScoringPool

from recplat.testing.rankers import tiny_snapshot, train_ranker

pytestmark = pytest.mark.fast


class _ThreadRecordingModel(RankingModel):
    def score(self, features: np.ndarray) -> np.ndarray:
        self.threads.append(threading.current_thread().name)  # type: ignore[attr-defined]
        return super().score(features)


def test_sparse_requests_score_inline_and_bursts_on_the_scoring_thread() -> None:
    model = _ThreadRecordingModel("m", "1", "champion", "run", train_ranker(), tiny_snapshot(), 0)
    object.__setattr__(model, "threads", [])
    features = model.features("u-1", ["i-1", "i-2", "i-3", "new"])
    expected = model.booster.predict(features)
    # A wide gap, so a loaded machine cannot make the burst look sparse.
    gap = 0.5
    pool = ScoringPool(busy_gap_s=gap)

    async def traffic() -> list[np.ndarray]:
        lone = await pool.score(model, features)
        await asyncio.sleep(gap * 1.5)
        burst = await asyncio.gather(*(pool.score(model, features) for _ in range(5)))
        return [lone, *burst]

    try:
        results = asyncio.run(traffic())
    finally:
        pool.shutdown()
    for scores in results:
        np.testing.assert_allclose(scores, expected)
    threads = model.threads  # type: ignore[attr-defined]
    assert threads[:2] == [threading.main_thread().name] * 2
    assert all(name.startswith("scoring") for name in threads[2:])


def test_compiled_trees_score_inline_even_in_a_burst() -> None:
    lightgbm = _ThreadRecordingModel(
        "m", "1", "champion", "run", train_ranker(), tiny_snapshot(), 0
    )
    model = lightgbm.with_compiled_trees()
    assert model.scorer == "compiled-trees"
    object.__setattr__(model, "threads", [])
    features = model.features("u-1", ["i-1", "i-2", "i-3", "new"])
    pool = ScoringPool(busy_gap_s=0.5)

    async def burst() -> list[np.ndarray]:
        return await asyncio.gather(*(pool.score(model, features) for _ in range(5)))

    try:
        results = asyncio.run(burst())
    finally:
        pool.shutdown()
    for scores in results:
        np.testing.assert_allclose(scores, model.booster.predict(features), atol=1e-9)
    assert model.threads == [threading.main_thread().name] * 5  # type: ignore[attr-defined]
