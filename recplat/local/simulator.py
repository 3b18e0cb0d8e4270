"""The traffic simulator: synthetic users asking a brand's service to rank, and clicking.

Users and items come from the brand's synthetic world; clicks are decided by its hidden
ground truth (`recplat.synthetic.GroundTruth`): an item shown at position p is clicked with
P(relevant) x P(examined at p). So a better ranking model earns more clicks, exactly as the
gate's offline metrics predict it should. Every request and event goes through the real
HTTP API with the brand's API key: `POST /rank`, then `POST /feedback` in batches.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

if TYPE_CHECKING:
    from recplat.synthetic import GroundTruth

FEEDBACK_BATCH_REQUESTS = 25


@dataclass(frozen=True)
class TrafficOptions:
    """How much traffic to send to one brand."""

    requests: int = 150
    candidates: int = 30
    shown: int = 10
    seed: int = 11


@dataclass
class VariantTally:
    """What users saw and clicked under one model version and variant, per the simulator."""

    impressions: int = 0
    clicks: int = 0

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0


@dataclass
class TrafficResult:
    """One brand's simulated traffic: what was sent, what failed, what landed as feedback."""

    brand: str
    requests: int = 0
    failed_requests: int = 0
    failures: list[str] = field(default_factory=list)
    feedback_event_ids: list[str] = field(default_factory=list)
    by_variant: dict[str, VariantTally] = field(default_factory=dict)
    seconds: float = 0.0

    def tally(self, variant: str, version: str | None) -> VariantTally:
        key = f"{variant} v{version}" if version else variant
        return self.by_variant.setdefault(key, VariantTally())


def simulate_brand(
    brand: str,
    service_url: str,
    api_key: str,
    truth: GroundTruth,
    options: TrafficOptions,
    on_request: Callable[[], None] | None = None,
) -> TrafficResult:
    """Send `options.requests` ranking requests to one brand's service and click per the truth."""
    rng = np.random.default_rng(options.seed)
    params = truth.params
    item_ids = [f"i{i:06d}" for i in range(params.items)]
    now = time.time()
    eligible = np.flatnonzero(truth.item_published_at <= now)
    n_candidates = min(options.candidates, len(eligible))
    result = TrafficResult(brand=brand)
    pending: list[dict[str, Any]] = []
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=service_url, headers=headers, timeout=10.0) as client:
        for number in range(options.requests):
            user_id = f"u{int(rng.integers(0, params.users)):06d}"
            chosen = rng.choice(eligible, n_candidates, replace=False)
            candidates = [item_ids[i] for i in chosen]
            result.requests += 1
            answer = _rank(client, user_id, candidates, options.shown, result)
            if answer is not None:
                pending.extend(_clicks(answer, user_id, truth, rng, result))
            if pending and (number + 1) % FEEDBACK_BATCH_REQUESTS == 0:
                _send_feedback(client, pending, result)
                pending = []
            if on_request is not None:
                on_request()
        if pending:
            _send_feedback(client, pending, result)
    result.seconds = time.monotonic() - started
    return result


def _rank(
    client: httpx.Client, user_id: str, candidates: list[str], shown: int, result: TrafficResult
) -> dict[str, Any] | None:
    body = {"user_id": user_id, "candidates": candidates, "k": shown}
    try:
        response = client.post("/rank", json=body)
    except httpx.HTTPError as error:
        _fail(result, f"/rank: {type(error).__name__}: {error}")
        return None
    if response.status_code != 200:
        _fail(result, f"/rank: HTTP {response.status_code}: {response.text[:200]}")
        return None
    answer: dict[str, Any] = response.json()
    return answer


def _clicks(
    answer: dict[str, Any],
    user_id: str,
    truth: GroundTruth,
    rng: np.random.Generator,
    result: TrafficResult,
) -> list[dict[str, Any]]:
    from recplat.synthetic import examination

    shown = [item["item_id"] for item in answer["items"]]
    now = time.time()
    relevance = truth.relevance(user_id, shown, now)
    positions = np.arange(1, len(shown) + 1)
    clicked = rng.random(len(shown)) < relevance * examination(positions)
    model = answer.get("model") or {}
    tally = result.tally(str(model.get("variant")), model.get("version"))
    tally.impressions += len(shown)
    tally.clicks += int(clicked.sum())
    timestamp = datetime.now(UTC).isoformat()
    events = []
    for item_id in np.asarray(shown, dtype=object)[clicked]:
        events.append(
            {
                "event_id": uuid.uuid4().hex,
                "request_id": answer["request_id"],
                "user_id": user_id,
                "item_id": str(item_id),
                "type": "click",
                "ts": timestamp,
            }
        )
    return events


def _send_feedback(
    client: httpx.Client, events: list[dict[str, Any]], result: TrafficResult
) -> None:
    try:
        response = client.post("/feedback", json={"events": events})
    except httpx.HTTPError as error:
        _fail(result, f"/feedback: {type(error).__name__}: {error}")
        return
    if response.status_code != 202:
        _fail(result, f"/feedback: HTTP {response.status_code}: {response.text[:200]}")
        return
    result.feedback_event_ids.extend(event["event_id"] for event in events)


def _fail(result: TrafficResult, message: str) -> None:
    result.failed_requests += 1
    if len(result.failures) < 5:
        result.failures.append(message)
