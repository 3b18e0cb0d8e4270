"""POST /feedback: one event or a batch, acknowledged (202) only once durable on local disk.

The handler is a plain `def`: FastAPI runs it in a worker thread, so the fsync that makes the
events durable never blocks the event loop that serves /rank.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, HTTPException, status

from ranking_service.auth import ApiKeyCheck
from ranking_service.rank_routes import AUTH_RESPONSES
from ranking_service.schemas import FeedbackAccepted, FeedbackBatch, FeedbackBody, FeedbackEvent
from ranking_service.service_state import State

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def _epoch_us(ts: datetime | None) -> int:
    # Integer arithmetic: `ts.timestamp()` is a float and can be a microsecond off.
    return time.time_ns() // 1000 if ts is None else (ts - EPOCH) // MICROSECOND


def feedback_router(api_key_check: ApiKeyCheck) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/feedback",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=FeedbackAccepted,
        responses=AUTH_RESPONSES,
        dependencies=[Depends(api_key_check)],
        summary="Record click, conversion or dismiss events (durable before 202)",
    )
    def feedback(body: FeedbackBody, state: State) -> FeedbackAccepted:
        events: list[FeedbackEvent] = body.events if isinstance(body, FeedbackBatch) else [body]
        limit = state.settings.max_feedback_batch
        if len(events) > limit:
            raise HTTPException(
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=f"events: at most {limit} events per batch, got {len(events)}",
            )
        brand = state.settings.brand
        records = [
            {
                "event_id": event.event_id or uuid.uuid4().hex,
                "request_id": event.request_id,
                "ts": _epoch_us(event.ts),
                "user_id": event.user_id,
                "item_id": event.item_id,
                "type": event.type,
                "brand": brand,
            }
            for event in events
        ]
        state.event_log.append("feedback", records, durable=True)
        metrics = state.metrics
        for event in events:
            metrics.feedback_events.labels(metrics.brand, event.type).inc()
        return FeedbackAccepted(accepted=len(records))

    return router
