"""The traffic simulator: synthetic users asking a brand's service to rank, and clicking.

Users, items and clicks come from the brand's hidden world (`recplat.synthetic.GroundTruth`, a
`recplat.simulation.truth.World`): a user is drawn by activity, the candidates are items
already published, and the user scans the returned list top-down (a cascade: clicks with the
item's true attraction, stops or goes on), so what is shown above changes a position's
clicks. A click converts with the item's own probability. Nothing of this is what the
features compute, so a model earns clicks only by learning the users' tastes.

The simulator is a client as a real one would be (docs/architecture.md, "Sessions"): it keeps
its own record of each user's clicks (`ClientSessions`) and sends the latest as
`recent_items`. Every request and event goes through the real HTTP API with the brand's API
key: `POST /rank`, then `POST /feedback` in batches.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
from ranking_features.definition import SESSION_LENGTH
from ranking_features.events import CLICK, CONVERSION

if TYPE_CHECKING:
    from recplat.synthetic import GroundTruth

FEEDBACK_BATCH_REQUESTS = 25
# A user looks at each clicked item this long before the next click (the cascade's order);
# a click converts this long after it. Microseconds keep every event before the user's next
# request while giving each its own time.
CLICK_STEP_US = 1
CONVERSION_DELAY_US = 500


@dataclass(frozen=True)
class TrafficOptions:
    """How much traffic to send to one brand."""

    requests: int = 150
    candidates: int = 30
    shown: int = 10
    seed: int = 11
    new_user_share: float = 0.0
    """A traffic shift: this share of requests comes from users the service has never seen (a
    campaign bringing newcomers), each under a fresh id, with the tastes of a world user."""


class ClientSessions:
    """The client's record of each user's clicks: the latest SESSION_LENGTH clicked item ids,
    newest last, which it sends as `recent_items` (docs/architecture.md, "Sessions")."""

    def __init__(self) -> None:
        self._clicks: dict[str, deque[str]] = {}

    def recent_items(self, user_id: str) -> list[str]:
        return list(self._clicks.get(user_id, ()))

    def record_click(self, user_id: str, item_id: str) -> None:
        self._clicks.setdefault(user_id, deque(maxlen=SESSION_LENGTH)).append(item_id)

    @classmethod
    def from_lake(cls, lake_uri: str) -> ClientSessions:
        """What the client remembers of the clicks in a lake's history: the clicks that count
        (one per event; linked ones only when they match an impression), in time order."""
        import pyarrow as pa
        import pyarrow.compute as pc
        from ranking_features.events import (
            FEEDBACK_DIR,
            FEEDBACK_SCHEMA,
            IMPRESSION_SCHEMA,
            IMPRESSIONS_DIR,
            first_of_each_event,
            matches_an_impression,
        )

        columns = ["event_id", "request_id", "ts", "user_id", "item_id", "type"]
        feedback = _read_events(lake_uri, FEEDBACK_DIR, FEEDBACK_SCHEMA, columns)
        sessions = cls()
        if feedback is None:
            return sessions
        feedback = feedback.filter(pc.equal(feedback["type"], CLICK))
        keys = ["request_id", "user_id", "item_id"]
        impressions = _read_events(lake_uri, IMPRESSIONS_DIR, IMPRESSION_SCHEMA, keys)
        keep = first_of_each_event(feedback)
        linked = feedback["request_id"].is_valid().to_numpy(zero_copy_only=False)
        if impressions is not None:
            keep &= ~linked | matches_an_impression(feedback, impressions)
        else:
            keep &= ~linked
        clicks = feedback.filter(pa.array(keep))
        order = np.argsort(clicks["ts"].to_numpy(), kind="stable")
        users = clicks["user_id"].to_numpy(zero_copy_only=False)[order]
        items = clicks["item_id"].to_numpy(zero_copy_only=False)[order]
        for user_id, item_id in zip(users, items, strict=True):
            sessions.record_click(str(user_id), str(item_id))
        return sessions


@dataclass
class VariantTally:
    """What users saw and did under one model version and variant, per the simulator."""

    impressions: int = 0
    clicks: int = 0
    conversions: int = 0

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0


@dataclass(frozen=True)
class RankCall:
    """One answered /rank call as the client made it (for tests that rebuild its features)."""

    request_id: str
    user_id: str
    candidates: list[str]
    recent_items: list[str]
    shown: list[str]
    scores: list[float]


@dataclass
class TrafficResult:
    """One brand's simulated traffic: what was sent, what failed, what landed as feedback."""

    brand: str
    requests: int = 0
    failed_requests: int = 0
    failures: list[str] = field(default_factory=list)
    feedback_event_ids: list[str] = field(default_factory=list)
    by_variant: dict[str, VariantTally] = field(default_factory=dict)
    calls: list[RankCall] = field(default_factory=list)
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
    sessions: ClientSessions | None = None,
    on_request: Callable[[], None] | None = None,
) -> TrafficResult:
    """Send `options.requests` ranking requests to one brand's service; users click per the
    world. `sessions` is the client's click record (empty if not given); it is updated."""
    rng = np.random.default_rng(options.seed)
    sessions = ClientSessions() if sessions is None else sessions
    item_ids = truth.item_ids()
    published = truth.available(time.time())
    n_candidates = min(options.candidates, len(published))
    result = TrafficResult(brand=brand)
    pending: list[dict[str, Any]] = []
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=service_url, headers=headers, timeout=10.0) as client:
        for number in range(options.requests):
            user = int(rng.choice(truth.params.users, p=truth.world.user_activity))
            user_id = truth.user_id(user)
            # Drawn only when asked for, so unshifted traffic replays the same requests.
            if options.new_user_share > 0 and rng.random() < options.new_user_share:
                user_id = f"{user_id}-new-{options.seed}-{number}"
            candidates = [item_ids[i] for i in rng.choice(published, n_candidates, replace=False)]
            body = {
                "user_id": user_id,
                "candidates": candidates,
                "k": options.shown,
                "recent_items": sessions.recent_items(user_id),
            }
            result.requests += 1
            answer = _rank(client, body, result)
            if answer is not None:
                pending.extend(_feedback(answer, body, user, truth, sessions, rng, result))
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
    client: httpx.Client, body: dict[str, Any], result: TrafficResult
) -> dict[str, Any] | None:
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


def _feedback(
    answer: dict[str, Any],
    body: dict[str, Any],
    user: int,
    truth: GroundTruth,
    sessions: ClientSessions,
    rng: np.random.Generator,
    result: TrafficResult,
) -> list[dict[str, Any]]:
    """The user's clicks and conversions on the list served, as feedback events; the clicks
    also go into the client's session record, as they happen."""
    shown = [item["item_id"] for item in answer["items"]]
    user_id = body["user_id"]
    result.calls.append(
        RankCall(
            request_id=answer["request_id"],
            user_id=user_id,
            candidates=body["candidates"],
            recent_items=body["recent_items"],
            shown=shown,
            scores=[item["score"] for item in answer["items"]],
        )
    )
    model = answer.get("model") or {}
    tally = result.tally(str(model.get("variant")), model.get("version"))
    tally.impressions += len(shown)
    if not shown:
        return []
    rows = truth.item_rows(shown)[None, :]
    clicked, converted = truth.world.sample_clicks(np.array([user]), rows, rng)
    tally.clicks += int(clicked.sum())
    tally.conversions += int(converted.sum())
    now_us = time.time_ns() // 1000
    events = []
    for slot in np.flatnonzero(clicked[0]):
        item_id = shown[slot]
        click_us = now_us + CLICK_STEP_US * int(slot)
        sessions.record_click(user_id, item_id)
        events.append(_event(answer["request_id"], user_id, item_id, CLICK, click_us))
        if converted[0, slot]:
            conversion_us = click_us + CONVERSION_DELAY_US
            events.append(_event(answer["request_id"], user_id, item_id, CONVERSION, conversion_us))
    return events


def _event(request_id: str, user_id: str, item_id: str, kind: str, ts_us: int) -> dict[str, Any]:
    ts = datetime.fromtimestamp(ts_us // 1_000_000, UTC).replace(microsecond=ts_us % 1_000_000)
    return {
        "event_id": uuid.uuid4().hex,
        "request_id": request_id,
        "user_id": user_id,
        "item_id": item_id,
        "type": kind,
        "ts": ts.isoformat(),
    }


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


def _read_events(lake_uri: str, events_dir: str, schema: Any, columns: list[str]) -> Any:
    """`columns` of every day's events of one kind in a lake (a pyarrow table cast to the
    `schema`'s types), or None when it has none."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from ranking_features.lake import open_lake

    fs, root = open_lake(lake_uri)
    folder = f"{root}/{events_dir}"
    if not fs.exists(folder):
        return None
    paths = sorted(p for p in fs.find(folder) if p.endswith(".parquet"))
    wanted = pa.schema([schema.field(name) for name in columns])
    tables = []
    for path in paths:
        with fs.open(path, "rb") as handle:
            tables.append(pq.read_table(handle, columns=columns).cast(wanted))
    return pa.concat_tables(tables) if tables else None
