"""The brand file's model: one pydantic model is the single source of truth for
``brands/<name>.yaml``.

Everything else derives from it: the JSON Schema editors use, the validator behind
``recplat brands validate`` (``ranking_features.brand.loading``), the inputs of every
``BrandStack`` and the flags of the training jobs (``ranking_features.brand.flags``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from ranking_features.brand.fields import (
    BrandName,
    CostCenter,
    CpuQuantity,
    CronSchedule,
    MemoryQuantity,
    OwnerEmail,
)

SCHEMA_FILE_NAME = "brand.schema.json"


class Environment(StrEnum):
    """The stacks a brand can be stamped into."""

    DEV = "dev"
    PROD = "prod"


class PromotionMetric(StrEnum):
    """Offline metrics the promotion gate can compare on."""

    NDCG_AT_5 = "ndcg@5"
    NDCG_AT_10 = "ndcg@10"
    MAP_AT_10 = "map@10"
    MRR = "mrr"


class _Strict(BaseModel):
    # python-re: the brand name pattern needs a look-ahead (no doubled dash).
    model_config = ConfigDict(
        extra="forbid", frozen=True, use_enum_values=False, regex_engine="python-re"
    )


class Replicas(_Strict):
    """How far the service's HorizontalPodAutoscaler may scale."""

    min: int = Field(2, ge=1, le=100, description="Replicas kept running at all times.")
    max: int = Field(6, ge=1, le=200, description="Upper bound for the autoscaler.")

    @model_validator(mode="after")
    def _max_not_below_min(self) -> Self:
        if self.max < self.min:
            raise ValueError(f"max: must be >= min ({self.min})")
        return self


class Serving(_Strict):
    """The real-time ranking service: sized for stability."""

    replicas: Replicas = Field(default_factory=lambda: Replicas())
    cpu: CpuQuantity = Field("500m", description="CPU request per pod, a Kubernetes quantity.")
    memory: MemoryQuantity = Field("512Mi", description="Memory request and limit per pod.")
    latency_slo_ms: int = Field(50, ge=5, le=5000, description="p99 latency objective of /rank.")
    max_candidates: int = Field(200, ge=1, le=2000, description="Most candidates per request.")
    challenger_traffic: float = Field(
        0.1, ge=0.0, le=0.5, description="Share of users served by the challenger model."
    )
    exploration: float = Field(
        0.05,
        ge=0.0,
        le=0.2,
        description=(
            "Share of requests whose top k is a uniformly random permutation of the model's top"
            " 2k, logged with propensities: the data the counterfactual gate judges on."
        ),
    )
    default_k: int = Field(
        20, ge=1, le=2000, description="Items returned (and logged) when a request gives no k."
    )


class LightGBMParams(_Strict):
    """LambdaRank hyper-parameters; the training job passes them to LightGBM unchanged."""

    num_leaves: int = Field(31, ge=2, le=1024)
    learning_rate: float = Field(0.05, gt=0.0, le=1.0)
    num_boost_round: int = Field(300, ge=1, le=10000)
    min_data_in_leaf: int = Field(20, ge=1, le=100000)
    feature_fraction: float = Field(0.9, gt=0.0, le=1.0)
    early_stopping_rounds: int = Field(30, ge=1, le=1000)


class Promotion(_Strict):
    """The gate a challenger must pass to become champion."""

    metric: PromotionMetric = PromotionMetric.NDCG_AT_10
    min_gain: float = Field(
        0.005, ge=0.0, le=1.0, description="Absolute gain over the champion required."
    )
    conversion_weight: float = Field(
        0.0,
        ge=0.0,
        le=100.0,
        description="The online objective per request: clicks + conversion_weight x conversions.",
    )
    margin: float = Field(
        0.01,
        ge=0.0,
        le=0.5,
        description=(
            "How much worse than the champion (a share of its estimated objective) the interval"
            " may allow for a retrain to become challenger."
        ),
    )
    min_exploration_requests: int = Field(
        300, ge=1, le=10_000_000, description="Exploration requests the gate needs to judge."
    )
    max_experiment_days: float = Field(
        14,
        gt=0,
        le=90,
        description=(
            "Longest an online experiment may run before it stops, in days (fractions allowed: "
            "0.25 is six hours)."
        ),
    )


class Training(_Strict):
    """The batch training job: built for flexibility."""

    schedule: CronSchedule = Field(
        "0 3 * * *", description="Cron schedule of the training CronJob (UTC)."
    )
    lookback_days: int = Field(28, ge=1, le=365)
    label_delay_hours: int = Field(
        6,
        ge=0,
        le=168,
        description="Events newer than this are left out: their clicks may not have arrived.",
    )
    lightgbm: LightGBMParams = Field(default_factory=lambda: LightGBMParams())
    promotion: Promotion = Field(default_factory=lambda: Promotion())
    workers: int = Field(0, ge=0, le=64, description="0 trains in the job's pod; N on Dask.")
    cpu: CpuQuantity = Field("1000m", description="CPU request per pod, a Kubernetes quantity.")
    memory: MemoryQuantity = Field("2Gi", description="Memory request and limit per pod.")


DRIFT_NOISE_MARGIN = 5.0
"""How far above the PSI of sampling noise alone the drift threshold must be (``Monitoring``)."""


class Monitoring(_Strict):
    """Feature drift: what the service samples, and when the drift alert fires.

    The service logs ``feature_sample`` of the items it returns with their feature vectors;
    the hourly drift job compares the last ``drift_window_hours`` of them with the champion's
    training distribution, feature by feature (population stability index, docs/architecture.md
    "Feature drift"), and the brand's alert fires when one passes ``drift_psi_threshold``.
    """

    feature_sample: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description=(
            "Share of the items /rank returns whose feature vector the service logs "
            "(events/features) for the drift job; 0 turns drift monitoring off."
        ),
    )
    drift_psi_threshold: float = Field(
        0.2,
        gt=0.0,
        le=10.0,
        description=(
            "A feature's population stability index against the champion's training "
            "distribution above this fires RecplatFeatureDrift."
        ),
    )
    drift_window_hours: int = Field(
        24, ge=1, le=168, description="Hours of sampled rows each drift job run compares."
    )
    drift_min_rows: int = Field(
        1000,
        ge=100,
        le=10_000_000,
        description="Fewest sampled rows a drift verdict needs; with fewer, none is given.",
    )

    @model_validator(mode="after")
    def _threshold_above_sampling_noise(self) -> Self:
        from ranking_features.drift import DEFAULT_BINS

        # Without drift, PSI over B bins is about (B - 1) / n for n sampled rows
        # (ranking_features.drift); a threshold near that would fire on noise alone.
        noise = (DEFAULT_BINS - 1) / self.drift_min_rows
        if self.drift_psi_threshold < DRIFT_NOISE_MARGIN * noise:
            raise ValueError(
                f"drift_psi_threshold: at least {DRIFT_NOISE_MARGIN * noise:.3f} "
                f"({DRIFT_NOISE_MARGIN:g} x the PSI that sampling noise alone gives at "
                f"drift_min_rows {self.drift_min_rows}); raise it, or raise drift_min_rows"
            )
        return self


class BrandSettings(_Strict):
    """What a brand file holds, without the per-environment overrides."""

    name: BrandName = Field(description="Lowercase DNS label, 3-24 characters; the file's stem.")
    # No control characters: YAML folds some (NEL, U+0085) into spaces, and tags refuse them.
    display_name: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")
    ]
    owner: OwnerEmail
    cost_center: CostCenter
    environments: list[Environment] = Field(min_length=1)
    serving: Serving = Field(default_factory=lambda: Serving())
    training: Training = Field(default_factory=lambda: Training())
    monitoring: Monitoring = Field(default_factory=lambda: Monitoring())

    @field_validator("environments")
    @classmethod
    def _environments_unique(cls, environments: list[Environment]) -> list[Environment]:
        if len(set(environments)) != len(environments):
            raise ValueError("each environment listed once")
        return environments


class Overrides(_Strict):
    """Partial settings that replace the base ones in one environment only."""

    serving: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    monitoring: dict[str, Any] | None = None


class Brand(BrandSettings):
    """A brand file: base settings plus per-environment overrides."""

    overrides: dict[Environment, Overrides] = Field(default_factory=dict)

    def for_environment(self, environment: Environment | str) -> Brand:
        """The brand as it is deployed into ``environment``: overrides merged, validated again."""
        env = Environment(environment)
        data = self.model_dump(mode="json", exclude={"overrides"})
        override = self.overrides.get(env)
        if override is not None:
            data = deep_merge(data, override.model_dump(mode="json", exclude_none=True))
        return Brand.model_validate(data)


def deep_merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``patch`` laid over it, mapping by mapping (an override onto a brand)."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def brands_for_environment(brands: Iterable[Brand], environment: Environment | str) -> list[Brand]:
    """The brands stamped into one stack, each with that environment's overrides applied."""
    env = Environment(environment)
    return [brand.for_environment(env) for brand in brands if env in brand.environments]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a brand file, generated from the model."""
    schema = Brand.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://recplat.dev/schemas/brand.schema.json"
    schema["title"] = "recplat brand file"
    return schema
