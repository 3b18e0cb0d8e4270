"""Where LightGBM scores a request: inline when requests are sparse, on a thread under load.

LightGBM's C code runs without the GIL. Under load, scoring on the one scoring thread lets the
event loop parse, featurise and answer other requests meanwhile: +20% max throughput with one
uvicorn worker on two cores, and a lower p99. When requests are sparse there is nothing to
overlap, and the hop only adds two thread wake-ups (milliseconds on an idle VM), so a request
that arrives more than `BUSY_GAP_S` after the previous one scores inline.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ranking_service.model_store import RankingModel

# Arrivals closer than this (over 500 requests/s) count as load.
BUSY_GAP_S = 0.002


class ScoringPool:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoring")
        self._last_arrival = 0.0

    async def score(self, model: RankingModel, features: np.ndarray) -> np.ndarray:
        now = time.monotonic()
        busy, self._last_arrival = now - self._last_arrival < BUSY_GAP_S, now
        if not busy:
            return model.score(features)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, model.score, features)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
