"""The HTTP API's request and response bodies (docs/architecture.md, "Contracts"), with
OpenAPI examples.

`rank_request_model()` builds the /rank request body for the brand's `max_candidates`, so the
limit is in the published OpenAPI schema and a request over it fails validation naming
`candidates`. Feedback is one event or a batch `{"events": [...]}`, told apart by the `events`
key so a bad event gets one error, not one per union branch.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    create_model,
)
from ranking_features.events import CLICK, FeedbackType
from ranking_features.mlflow_names import CHAMPION, registered_model_name

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=256)]
MAX_RECENT_ITEMS = 100
M = TypeVar("M", bound=BaseModel)
# The window a feedback `ts` must fall in. Before 2000 no event of this platform happened;
# an hour ahead covers clocks that drift or are set by hand, yet refuses what no clock
# produces (a year-9999 date cannot even be named as a lake partition). Nothing of the ranked
# past is lost: the service itself stamps events without a `ts`.
FEEDBACK_TS_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FEEDBACK_TS_MAX_AHEAD = timedelta(hours=1)


def _unique(items: list[str]) -> list[str]:
    if len(set(items)) != len(items):
        duplicates = sorted(i for i, n in Counter(items).items() if n > 1)
        raise ValueError(f"item ids must be unique; duplicated: {', '.join(duplicates[:5])}")
    return items


class RankRequestBase(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "user_id": "u-1042",
                    "candidates": ["i-17", "i-3", "i-256"],
                    "k": 2,
                    "recent_items": ["i-99"],
                    "context": {"page": "home"},
                }
            ]
        },
    )

    user_id: Identifier
    candidates: list[Identifier]
    k: Annotated[
        int | None,
        Field(
            ge=1,
            description="How many items to return (default: the brand's serving.default_k); "
            "at most the number of candidates.",
        ),
    ] = None
    recent_items: Annotated[
        list[Identifier],
        Field(max_length=MAX_RECENT_ITEMS, description="The user's latest items, newest last."),
    ] = []
    context: Annotated[
        dict[str, Any], Field(description="Free-form request context (not used for scoring).")
    ] = {}


def _plausible_event_time(ts: datetime | None) -> datetime | None:
    if (
        ts is not None
        and not FEEDBACK_TS_EARLIEST <= ts <= datetime.now(UTC) + FEEDBACK_TS_MAX_AHEAD
    ):
        raise ValueError(
            "must be from 2000-01-01T00:00:00Z to 1 hour past the server's clock, "
            f"got {ts.isoformat()}"
        )
    return ts


def rank_request_model(max_candidates: int) -> type[RankRequestBase]:
    """The /rank request body allowing 1..max_candidates unique candidates."""
    candidates = Annotated[
        list[Identifier],
        Field(
            min_length=1,
            max_length=max_candidates,
            description=f"1 to {max_candidates} unique item ids to rank.",
        ),
        AfterValidator(_unique),
    ]
    return create_model("RankRequest", __base__=RankRequestBase, candidates=(candidates, ...))


def json_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting `model` as the required JSON body of a route that parses it
    itself with `parse_json_body`."""
    schema = {"schema": model.model_json_schema()}
    return {"requestBody": {"required": True, "content": {"application/json": schema}}}


def parse_json_body(model: type[M], content_type: str | None, body: bytes) -> M:
    """`body` validated as `model`, as FastAPI would: a JSON content type is required, and
    errors are a RequestValidationError located under "body" (answered 422 naming the field)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    is_json = media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )
    if not is_json:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None


class ModelRef(BaseModel):
    name: str | None
    version: str | None
    variant: Literal["champion", "challenger", "fallback"]


class RankedItem(BaseModel):
    item_id: str
    score: float


class RankResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "request_id": "3f0c6d3e8a4b4c1c9a8f0e6c2b7d5a10",
                    "model": {
                        "name": registered_model_name("acme"),
                        "version": "7",
                        "variant": CHAMPION,
                    },
                    "items": [{"item_id": "i-3", "score": 1.37}, {"item_id": "i-17", "score": 0.2}],
                    "fallback": False,
                }
            ]
        }
    )

    request_id: str
    model: ModelRef
    items: Annotated[
        list[RankedItem],
        Field(
            description="The items to show, in the order to show them, with the model's scores. "
            "By descending score, except on the share of requests the service explores (a "
            "random order of the model's top 2k, logged with its propensities)."
        ),
    ]
    fallback: bool


class FeedbackEvent(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event_id": "e-5521",
                    "request_id": "3f0c6d3e8a4b4c1c9a8f0e6c2b7d5a10",
                    "user_id": "u-1042",
                    "item_id": "i-3",
                    "type": CLICK,
                    "ts": "2025-01-31T12:00:00Z",
                }
            ]
        },
    )

    event_id: Annotated[
        Identifier | None,
        Field(description="Idempotency key; duplicates are removed downstream. Default: new."),
    ] = None
    request_id: Annotated[
        Identifier | None, Field(description="The /rank request_id this event follows.")
    ] = None
    user_id: Identifier
    item_id: Identifier
    type: FeedbackType
    ts: Annotated[
        AwareDatetime | None,
        Field(
            description="When it happened, with a time zone, from 2000-01-01T00:00:00Z to one "
            "hour past the server's clock. Default: now."
        ),
        AfterValidator(_plausible_event_time),
    ] = None


class FeedbackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[FeedbackEvent], Field(min_length=1)]


def _feedback_kind(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "events" in value else "event"


FeedbackBody = Annotated[
    Annotated[FeedbackEvent, Tag("event")] | Annotated[FeedbackBatch, Tag("batch")],
    Discriminator(_feedback_kind),
]


class FeedbackAccepted(BaseModel):
    accepted: int


class ErrorResponse(BaseModel):
    """Every 4xx: `detail` says what is wrong and where."""

    detail: str
    errors: list[dict[str, Any]] = []


class HealthResponse(BaseModel):
    status: str


class ServingModelInfo(BaseModel):
    name: str
    version: str
    alias: str
    run_id: str
    data_from: str | None
    data_to: str | None
    offline_metrics: dict[str, float]
    registered_at: datetime
    loaded_at: datetime
    scorer: Annotated[
        Literal["compiled-trees", "lightgbm"],
        Field(
            description="What scores: the trees compiled to lookup tables (verified equal to "
            "LightGBM's scores at load) or LightGBM itself (models the tables cannot score)."
        ),
    ]
    experiment_id: Annotated[
        str | None,
        Field(description="The version's `experiment_id` registry tag, read when it loaded."),
    ] = None


class ModelInfoResponse(BaseModel):
    brand: str
    challenger_traffic: float
    exploration: Annotated[
        float,
        Field(description="Share of the model's /rank requests answered by exploration."),
    ]
    default_k: Annotated[int, Field(description="Items returned when a request gives no k.")]
    experiment_id: Annotated[
        str | None,
        Field(description="The online experiment /rank requests log now (null: none)."),
    ]
    fallback: bool
    models: list[ServingModelInfo]
