"""The FastAPI application: wiring of settings, routes, background tasks and error shapes.

`create_app(settings)` builds the app and takes the event log's folder lock. Its lifespan
starts the lake shipper (leftover segments of a crash are shipped first) and the model
reloader (the first registry load runs in the background; `/readyz` turns 200 when it is
done). On shutdown it stops both and ships what is left; what could not be shipped (the lake
away, or segments in quarantine) is kept on local disk and the last log line says how much.

/rank counts every answer by outcome: answered (`ok`, `fallback`), failed on the server's side
(`error`, a 5xx, which pages) or refused as the client's fault (`unauthorized` 401/403,
`invalid` 422, `too_large` 413, which alone never page).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from ranking_service.auth import ApiKeyCheck
from ranking_service.body_limit import BodySizeLimit
from ranking_service.drift_gauges import DriftGauges
from ranking_service.event_log import EventLog
from ranking_service.exploration import Exploration
from ranking_service.feature_sample import FeatureSampler
from ranking_service.feedback_routes import feedback_router
from ranking_service.lake_shipper import LakeShipper
from ranking_service.metrics import ServiceMetrics
from ranking_service.ops_routes import router as ops_router
from ranking_service.rank_batcher import RankBatcher
from ranking_service.rank_routes import rank_router, record_rank_error
from ranking_service.reload import ModelReloader
from ranking_service.scoring_pool import ScoringPool
from ranking_service.service_state import ServiceState
from ranking_service.settings import Settings, redact

log = logging.getLogger(__name__)

# Union branch tags that pydantic puts into error locations; users never typed them.
_LOCATION_NOISE = {"body", "event", "batch"}


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """`("body", "batch", "events", 0, "type")` -> `events[0].type`."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in _LOCATION_NOISE:
            path += f".{part}" if path else str(part)
    return path or "body"


def _count_unanswered_rank(request: Request, outcome: str) -> None:
    if request.url.path == "/rank":
        metrics: ServiceMetrics = request.app.state.service.metrics
        metrics.count_rank("none", outcome)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code in (401, 403):
        _count_unanswered_rank(request, "unauthorized")
    elif error.status_code == 413:
        _count_unanswered_rank(request, "too_large")
    elif 400 <= error.status_code < 500:
        _count_unanswered_rank(request, "invalid")
    elif error.status_code >= 500 and request.url.path == "/rank":
        record_rank_error(request, error)
    return await http_exception_handler(request, error)


async def _server_error(request: Request, error: Exception) -> Response:
    # Starlette's outermost middleware calls this for any unhandled exception, then re-raises
    # it, so uvicorn still logs the traceback; only the answer and the count are ours.
    if request.url.path == "/rank":
        record_rank_error(request, error)
    return JSONResponse(
        {"detail": "internal error; the service log has the cause"},
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    _count_unanswered_rank(request, "invalid")
    errors = [
        {
            "field": field_path(e["loc"]),
            "message": e["msg"].removeprefix("Value error, "),
            "type": e["type"],
        }
        for e in error.errors()
    ]
    content_type = request.headers.get("content-type", "")
    if any(e["field"] == "body" for e in errors) and "json" not in content_type:
        errors = [
            {
                "field": "body",
                "message": "expected a JSON object; send it with 'Content-Type: application/json'",
                "type": "content_type",
            }
        ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return JSONResponse(
        {"detail": detail or "invalid request body", "errors": errors},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def create_app(settings: Settings) -> FastAPI:
    """The ranking service of one brand, configured by `settings`."""
    api_key_check = ApiKeyCheck(settings.read_api_key())
    scoring = ScoringPool()
    state = _service_state(settings, scoring)
    drift_gauges = DriftGauges(settings, state.metrics, after=state.reloader.ready)
    # Opened here, before uvicorn starts: a bad lake URI or a second process on the same
    # event log fails fast with one line, not a lifespan traceback.
    shipper = LakeShipper(
        state.event_log, settings.lake_uri, state.metrics, settings.ship_interval_s
    )
    state.event_log.open()

    app = FastAPI(
        title=f"recplat ranking service ({settings.brand})",
        version="1",
        description="Ranks candidate items for a user with the brand's champion LightGBM model "
        "and records impressions and feedback for training.",
        lifespan=_lifespan(state, scoring, shipper, drift_gauges),
    )
    app.state.service = state
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)

    def count_too_large(scope: Scope) -> None:
        if scope["path"] == "/rank":
            state.metrics.count_rank("none", "too_large")

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, on_refused=count_too_large)
    app.include_router(rank_router(settings.max_candidates, api_key_check))
    app.include_router(feedback_router(api_key_check))
    app.include_router(ops_router)
    return app


def _service_state(settings: Settings, scoring: ScoringPool) -> ServiceState:
    """The objects the routes and background tasks share; the event log is not open yet."""
    metrics = ServiceMetrics(settings.brand)
    event_log = EventLog(settings.event_log_dir)
    return ServiceState(
        settings=settings,
        metrics=metrics,
        reloader=ModelReloader(settings, metrics),
        event_log=event_log,
        batcher=RankBatcher(scoring, metrics.rank_batch_size.labels(settings.brand).observe),
        exploration=Exploration(settings.exploration, settings.exploration_seed),
        feature_sampler=FeatureSampler(
            settings.feature_sample, event_log, settings.brand, settings.exploration_seed
        ),
    )


def _lifespan(
    state: ServiceState, scoring: ScoringPool, shipper: LakeShipper, drift_gauges: DriftGauges
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Starts the shipper, the reloader and the drift gauges; on shutdown stops them, ships
    what is left and says what stays on local disk."""
    settings = state.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        shipper.start()
        state.reloader.start()
        drift_gauges.start()
        log.info(
            "ranking service for %s (%s): model %s from %s, lake %s",
            settings.brand,
            settings.env,
            settings.registered_model,
            redact(settings.tracking_uri) or "(no registry: fallback only)",
            redact(settings.lake_uri),
        )
        try:
            yield
        finally:
            scoring.shutdown()
            state.reloader.stop()
            drift_gauges.stop()
            shipper.stop()
            state.event_log.close()
            _log_backlog(shipper, state.event_log)

    return lifespan


def _log_backlog(shipper: LakeShipper, event_log: EventLog) -> None:
    """The last log line: whether everything was shipped, or how much stays on local disk."""
    pending, quarantined = shipper.backlog()
    if pending or quarantined:
        log.warning(
            "stopped: event log flushed; %d segment(s) left to ship at the next start, "
            "%d quarantined in %s",
            pending,
            quarantined,
            event_log.quarantine_directory,
        )
    else:
        log.info("stopped: event log flushed and shipped")
