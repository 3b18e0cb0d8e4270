"""Unauthenticated operations endpoints: /healthz, /readyz, /model and /metrics."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse

from ranking_service.metrics import CONTENT_TYPE
from ranking_service.schemas import HealthResponse, ModelInfoResponse, ServingModelInfo
from ranking_service.service_state import State
from ranking_service.variant_split import experiment_started_at, running_experiment

router = APIRouter()


@router.get("/healthz", response_model=HealthResponse, summary="Liveness")
async def healthz() -> HealthResponse:
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "Still loading the model."}},
    summary="Readiness: 200 once a model (or the fallback) is loaded",
)
async def readyz(state: State) -> Response:
    if not state.reloader.ready.is_set():
        return JSONResponse({"status": "loading"}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    served = state.reloader.served
    return JSONResponse({"status": "ready" if served.champion else "ready-fallback"})


@router.get("/model", response_model=ModelInfoResponse, summary="The serving model(s)")
async def model_info(state: State) -> ModelInfoResponse:
    served = state.reloader.served
    models = [m for m in (served.champion, served.challenger) if m is not None]
    return ModelInfoResponse(
        brand=state.settings.brand,
        challenger_traffic=state.settings.challenger_traffic,
        exploration=state.settings.exploration,
        default_k=state.settings.default_k,
        experiment_id=running_experiment(served, state.settings.challenger_traffic),
        fallback=served.champion is None,
        models=[
            ServingModelInfo(
                name=m.name,
                version=m.version,
                alias=m.alias,
                run_id=m.run_id,
                data_from=m.data_from,
                data_to=m.data_to,
                offline_metrics=m.offline_metrics,
                registered_at=datetime.fromtimestamp(m.registered_at, tz=UTC),
                loaded_at=datetime.fromtimestamp(m.loaded_at, tz=UTC),
                scorer=m.scorer,
                experiment_id=m.experiment_id,
            )
            for m in models
        ],
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics",
)
async def metrics(state: State) -> Response:
    m = state.metrics
    served = state.reloader.served
    now = time.time()
    for alias, model in (("champion", served.champion), ("challenger", served.challenger)):
        m.model_age.labels(m.brand, alias).set(now - model.registered_at if model else 0)
    m.set_experiment_age(experiment_started_at(served, state.settings.challenger_traffic), now)
    return Response(m.exposition(), media_type=CONTENT_TYPE)
