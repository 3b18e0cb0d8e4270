"""Ranking one /rank request in its arm: score, fall back, choose the list, log the impression.

The route (`ranking_service.rank_routes`) handles HTTP: the API key, the body, the arm and the
answer's bytes. This module does the ranking itself. The candidates are featurised and scored
by the `RankBatcher`, together with the requests that arrived at the same time. If no model is
loaded (or scoring fails) the answer is the popularity fallback, marked `fallback: true` and
counted. `Exploration` picks the list shown: the top k (`k`, else the brand's `default_k`), or
on a share of the model's requests a random permutation of its top 2k; the impression record
logs the policy and propensity. A share of the returned items' feature vectors goes to the
feature sample (`feature_sample`).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import numpy as np

from ranking_service.exploration import ShownList
from ranking_service.model_store import (
    FALLBACK,
    RankingModel,
    ServedModels,
    popularity_scores,
    rank_order,
)
from ranking_service.schemas import RankRequestBase
from ranking_service.service_state import ServiceState

log = logging.getLogger(__name__)


async def rank_in_arm(
    state: ServiceState,
    served: ServedModels,
    body: RankRequestBase,
    variant: str,
    model: RankingModel | None,
    experiment_id: str | None,
) -> dict[str, Any]:
    """The answer to `body` from the arm's `model` (`variant`), or from the popularity fallback
    when there is none or it fails; the impression is logged. The dict matches RankResponse."""
    candidates: list[str] = body.candidates
    now = time.time()
    scores = await _model_scores(state, model, body, now)
    if scores is None:
        model, variant = None, FALLBACK
        scores = popularity_scores(served.fallback_snapshot, candidates)
    k = body.k if body.k is not None else state.settings.default_k
    shown = state.exploration.choose(rank_order(scores), k, explorable=model is not None)
    items = [candidates[i] for i in shown.shown.tolist()]
    # The model's scores of the items shown: descending unless the request was explored.
    item_scores = scores[shown.shown].tolist()
    if shown.pool is not None:
        state.metrics.count_explored(variant)
    request_id = uuid.uuid4().hex
    _log_impression(
        state, request_id, body.user_id, items, item_scores, model, variant, shown, candidates,
        experiment_id,
    )  # fmt: skip
    if model is not None:
        state.feature_sampler.offer(
            model, variant, request_id, body.user_id, items, body.recent_items, now
        )
    return {
        "request_id": request_id,
        "model": {
            "name": model.name if model is not None else None,
            "version": model.version if model is not None else None,
            "variant": variant,
        },
        "items": [{"item_id": i, "score": s} for i, s in zip(items, item_scores, strict=True)],
        "fallback": model is None,
    }


async def _model_scores(
    state: ServiceState, model: RankingModel | None, body: RankRequestBase, now: float
) -> np.ndarray | None:
    """The model's scores of the candidates; None (counted as a fallback, with its reason)
    when there is no model or scoring fails or gives a non-finite score."""
    metrics = state.metrics
    if model is None:
        metrics.fallback.labels(metrics.brand, "no_model").inc()
        return None
    try:
        scores = await state.batcher.score(
            model, body.user_id, body.candidates, body.recent_items, now=now
        )
        if not np.all(np.isfinite(scores)):
            raise ValueError("non-finite scores")
    except Exception:
        log.exception("scoring with %s v%s failed: fallback", model.name, model.version)
        metrics.fallback.labels(metrics.brand, "scoring_error").inc()
        return None
    return scores


def _log_impression(
    state: ServiceState,
    request_id: str,
    user_id: str,
    items: list[str],
    item_scores: list[float],
    model: RankingModel | None,
    variant: str,
    shown: ShownList,
    candidates: list[str],
    experiment_id: str | None,
) -> None:
    """The impression record training and the experiment read (docs/architecture.md,
    "Impressions and exploration")."""
    pool = [candidates[i] for i in shown.pool.tolist()] if shown.pool is not None else None
    state.event_log.append(
        "impressions",
        [
            {
                "request_id": request_id,
                "ts": time.time_ns() // 1000,
                "user_id": user_id,
                "items": items,
                "scores": item_scores,
                "model_name": model.name if model is not None else None,
                "model_version": model.version if model is not None else None,
                "variant": variant,
                "brand": state.settings.brand,
                "policy": shown.policy,
                "propensity": shown.propensity,
                "pool": pool,
                "experiment_id": experiment_id,
            }
        ],
        durable=False,
    )
