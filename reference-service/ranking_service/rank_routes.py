"""POST /rank: pick the variant, score the candidates, choose the list, log it, answer.

The candidates are featurised and scored by the `RankBatcher`, together with the requests
that arrived at the same time. If no model is loaded (or scoring fails) the answer is the
popularity fallback, marked `fallback: true` and counted. `Exploration` picks the list shown:
the top k (`k`, else the brand's `default_k`), or on a share of the model's requests a random
permutation of its top 2k; the impression record logs the policy and propensity. A share of
the returned items' feature vectors goes to the feature sample (`feature_sample`).
"""

import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from ranking_service.auth import BEARER_SECURITY, ApiKeyCheck
from ranking_service.model_store import FALLBACK, popularity_scores, rank_order
from ranking_service.schemas import (
    ErrorResponse,
    RankResponse,
    json_body_schema,
    parse_json_body,
    rank_request_model,
)
from ranking_service.service_state import ServiceState
from ranking_service.variant_split import choose_model, running_experiment

log = logging.getLogger(__name__)

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No API key."},
    403: {"model": ErrorResponse, "description": "Wrong API key."},
    413: {"model": ErrorResponse, "description": "Body over the size limit."},
    422: {"model": ErrorResponse, "description": "Invalid body; `detail` names the field."},
}


class SelfParsingRoute(APIRoute):
    """An APIRoute whose endpoint takes the `Request` and returns a `Response` itself.

    FastAPI documents it as usual (the body schema and security come from `openapi_extra`)
    but runs the endpoint directly: no body parsing, dependency solving or response
    validation around it, so the endpoint does the API key check and parses the body itself.
    That machinery cost /rank ~90 us a request, 15% of its max throughput with one worker.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


def rank_router(max_candidates: int, api_key_check: ApiKeyCheck) -> APIRouter:
    router = APIRouter(route_class=SelfParsingRoute)
    request_model = rank_request_model(max_candidates)

    @router.post(
        "/rank",
        response_model=RankResponse,
        responses=AUTH_RESPONSES,
        summary="Rank candidate items for a user",
        openapi_extra={**json_body_schema(request_model), "security": BEARER_SECURITY},
    )
    async def rank(request: Request) -> Response:
        api_key_check.verify(request.headers.get("authorization"))
        body = parse_json_body(
            request_model, request.headers.get("content-type"), await request.body()
        )
        state: ServiceState = request.app.state.service
        started = time.perf_counter()
        settings, metrics = state.settings, state.metrics
        served = state.reloader.served
        variant, model = choose_model(served, body.user_id, settings.challenger_traffic)
        experiment_id = running_experiment(served, settings.challenger_traffic)
        # From here on the request is in an arm: a failure is that arm's (`record_rank_error`).
        request.state.rank_arm = RankArm(
            body.user_id, variant, model.version if model else None, experiment_id
        )
        candidates: list[str] = body.candidates
        scores: np.ndarray | None = None
        now = time.time()
        if model is not None:
            try:
                scores = await state.batcher.score(
                    model, body.user_id, candidates, body.recent_items, now=now
                )
                if not np.all(np.isfinite(scores)):
                    raise ValueError("non-finite scores")
            except Exception:
                log.exception("scoring with %s v%s failed: fallback", model.name, model.version)
                metrics.fallback.labels(metrics.brand, "scoring_error").inc()
        else:
            metrics.fallback.labels(metrics.brand, "no_model").inc()
        if scores is None:
            model, variant = None, FALLBACK
            scores = popularity_scores(served.fallback_snapshot, candidates)

        k = body.k if body.k is not None else settings.default_k
        shown = state.exploration.choose(rank_order(scores), k, explorable=model is not None)
        items = [candidates[i] for i in shown.shown.tolist()]
        # The model's scores of the items shown: descending unless the request was explored.
        item_scores = scores[shown.shown].tolist()
        pool = None
        if shown.pool is not None:
            pool = [candidates[i] for i in shown.pool.tolist()]
            metrics.count_explored(variant)
        request_id = uuid.uuid4().hex
        model_name = model.name if model is not None else None
        model_version = model.version if model is not None else None
        state.event_log.append(
            "impressions",
            [
                {
                    "request_id": request_id,
                    "ts": time.time_ns() // 1000,
                    "user_id": body.user_id,
                    "items": items,
                    "scores": item_scores,
                    "model_name": model_name,
                    "model_version": model_version,
                    "variant": variant,
                    "brand": settings.brand,
                    "policy": shown.policy,
                    "propensity": shown.propensity,
                    "pool": pool,
                    "experiment_id": experiment_id,
                }
            ],
            durable=False,
        )
        if model is not None:
            state.feature_sampler.offer(
                model, variant, request_id, body.user_id, items, body.recent_items, now
            )
        payload = {
            "request_id": request_id,
            "model": {"name": model_name, "version": model_version, "variant": variant},
            "items": [{"item_id": i, "score": s} for i, s in zip(items, item_scores, strict=True)],
            "fallback": model is None,
        }
        outcome = "fallback" if model is None else "ok"
        metrics.count_rank(variant, outcome, time.perf_counter() - started)
        del request.state.rank_arm  # answered: nothing after this is the arm's failure
        # The payload already matches RankResponse; skipping re-validation saves ~0.1 ms.
        return Response(orjson.dumps(payload), media_type="application/json")

    return router


@dataclass(frozen=True, slots=True)
class RankArm:
    """Who a /rank request was for and which arm answered it, kept until it is answered."""

    user_id: str
    variant: str
    model_version: str | None
    experiment_id: str | None


def record_rank_error(request: Request, error: BaseException) -> str:
    """Count a /rank request that failed, under its arm's variant ("none" before it had one),
    and log it as an `errors` event so the experiment's error-ratio guardrail sees it. Never
    raises: it runs inside the error handler, maybe because the event log itself failed."""
    state: ServiceState = request.app.state.service
    arm: RankArm | None = getattr(request.state, "rank_arm", None)
    variant = arm.variant if arm is not None else "none"
    state.metrics.count_rank(variant, "error")
    if arm is None:
        return variant
    try:
        state.event_log.append(
            "errors",
            [
                {
                    "request_id": uuid.uuid4().hex,
                    "ts": time.time_ns() // 1000,
                    "user_id": arm.user_id,
                    "variant": arm.variant,
                    "model_version": arm.model_version,
                    "brand": state.settings.brand,
                    "experiment_id": arm.experiment_id,
                    "error": type(error).__name__,
                }
            ],
            durable=False,
        )
    except Exception:
        log.exception("the failed /rank request could not be logged as an errors event")
    return variant
