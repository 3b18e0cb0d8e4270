"""Where a request is scored: inline, or for LightGBM under load on the scoring thread.

Compiled trees (`compiled_trees`) always score inline: they are a dozen short numpy calls
that hold the GIL, so a thread would only add hand-offs (measured: -30% max throughput).

LightGBM's C code runs without the GIL. Under load, scoring on the one scoring thread lets the
event loop parse, featurise and answer other requests meanwhile: +20% max throughput with one
uvicorn worker on two cores, and a lower p99. When requests are sparse there is nothing to
overlap, and the hop only adds two thread wake-ups (milliseconds on an idle VM), so a request
scores inline when nothing is being scored on the thread and the previous scoring ended more
than `busy_gap_s` ago.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ranking_service.model_store import RankingModel

# Less than this since the last scoring ended (over ~500 requests/s) counts as load.
BUSY_GAP_S = 0.002


class ScoringPool:
    def __init__(self, busy_gap_s: float = BUSY_GAP_S) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoring")
        self._busy_gap_s = busy_gap_s
        self._last_done = -float("inf")
        self._on_thread = 0

    async def score(self, model: RankingModel, features: np.ndarray) -> np.ndarray:
        # Measured from the end of the last scoring, not its start: a slow inline scoring
        # must not make back-to-back requests look sparse.
        sparse = time.monotonic() - self._last_done >= self._busy_gap_s
        try:
            if model.compiled is not None or (sparse and self._on_thread == 0):
                return model.score(features)
            self._on_thread += 1
            try:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._executor, model.score, features)
            finally:
                self._on_thread -= 1
        finally:
            self._last_done = time.monotonic()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
