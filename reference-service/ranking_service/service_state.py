"""The objects one running service shares between its routes and background tasks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ranking_service.event_log import EventLog
from ranking_service.exploration import Exploration
from ranking_service.feature_sample import FeatureSampler
from ranking_service.metrics import ServiceMetrics
from ranking_service.rank_batcher import RankBatcher
from ranking_service.reload import ModelReloader
from ranking_service.settings import Settings


@dataclass
class ServiceState:
    settings: Settings
    metrics: ServiceMetrics
    reloader: ModelReloader
    event_log: EventLog
    batcher: RankBatcher
    exploration: Exploration
    feature_sampler: FeatureSampler


async def _service_state(request: Request) -> ServiceState:
    # async on purpose: FastAPI runs sync dependencies in its thread pool, a hop per request.
    state: ServiceState = request.app.state.service
    return state


State = Annotated[ServiceState, Depends(_service_state)]
