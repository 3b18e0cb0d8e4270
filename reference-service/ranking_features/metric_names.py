"""The Prometheus metric names of a ranking service, defined once (docs/architecture.md,
"Contracts").

Dashboards (``infra.dashboards``) build every query from these; the service
(``ranking_service.metrics``) and the alert rules (``infra.brand_alerts``) still spell the
names out themselves and should import them from here (issue 17). ``name`` is what
``prometheus_client`` registers; a counter is exposed as ``<name>_total`` and a histogram as
``<name>_bucket``, ``_sum`` and ``_count``, which the properties below spell.

A metric with ``exported=False`` is one a dashboard panel needs but no process exports yet:
its panel is kept, so the gap shows, and the panel-query test checks its PromQL is valid
without expecting data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MetricKind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class MetricName:
    """One metric family: its registered name, kind and labels."""

    name: str
    kind: MetricKind
    labels: tuple[str, ...]
    exported: bool = True
    """False: a dashboard asks for it, nothing exports it yet (see ``needed_by``)."""
    needed_by: str = ""
    """For a metric not exported yet: what should export it."""

    @property
    def total(self) -> str:
        """The series name of a counter."""
        self._expect(MetricKind.COUNTER)
        return f"{self.name}_total"

    @property
    def bucket(self) -> str:
        self._expect(MetricKind.HISTOGRAM)
        return f"{self.name}_bucket"

    @property
    def sum(self) -> str:
        self._expect(MetricKind.HISTOGRAM)
        return f"{self.name}_sum"

    @property
    def count(self) -> str:
        self._expect(MetricKind.HISTOGRAM)
        return f"{self.name}_count"

    @property
    def series_names(self) -> tuple[str, ...]:
        """Every series name this family is exposed as."""
        if self.kind is MetricKind.COUNTER:
            return (self.total,)
        if self.kind is MetricKind.HISTOGRAM:
            return (self.bucket, self.sum, self.count)
        return (self.name,)

    def _expect(self, kind: MetricKind) -> None:
        if self.kind is not kind:
            raise ValueError(f"{self.name} is a {self.kind}, not a {kind}")


RANK_REQUESTS = MetricName(
    "recplat_rank_requests", MetricKind.COUNTER, ("brand", "variant", "outcome")
)
RANK_LATENCY = MetricName(
    "recplat_rank_latency_seconds", MetricKind.HISTOGRAM, ("brand", "variant")
)
RANK_EXPLORED = MetricName("recplat_rank_explored", MetricKind.COUNTER, ("brand", "variant"))
RANK_BATCH_SIZE = MetricName("recplat_rank_batch_size", MetricKind.HISTOGRAM, ("brand",))
FALLBACK = MetricName("recplat_fallback", MetricKind.COUNTER, ("brand", "reason"))
FEEDBACK_EVENTS = MetricName("recplat_feedback_events", MetricKind.COUNTER, ("brand", "type"))
MODEL_VERSION = MetricName("recplat_model_version", MetricKind.GAUGE, ("brand", "alias"))
MODEL_AGE = MetricName("recplat_model_age_seconds", MetricKind.GAUGE, ("brand", "alias"))
MODEL_RELOADS = MetricName("recplat_model_reloads", MetricKind.COUNTER, ("brand", "alias"))
MODEL_RELOAD_FAILURES = MetricName(
    "recplat_model_reload_failures", MetricKind.COUNTER, ("brand", "alias", "reason")
)
EXPERIMENT_AGE = MetricName("recplat_experiment_age_seconds", MetricKind.GAUGE, ("brand",))
"""Seconds since the running online experiment started; 0 while none runs."""
EVENTS_SHIPPED = MetricName("recplat_events_shipped", MetricKind.COUNTER, ("brand", "kind"))
EVENT_SHIP_FAILURES = MetricName(
    "recplat_event_ship_failures", MetricKind.COUNTER, ("brand", "kind")
)
EVENTS_PENDING = MetricName("recplat_events_pending_segments", MetricKind.GAUGE, ("brand",))
EVENTS_QUARANTINED = MetricName(
    "recplat_events_quarantined_segments", MetricKind.GAUGE, ("brand", "kind")
)

# Computed by the experiment evaluator (feedback meets impressions only in the lake), written
# as `online.*` tags on each arm's version, exported by the service (ranking_service.drift_gauges).
ONLINE_CTR = MetricName("recplat_online_ctr", MetricKind.GAUGE, ("brand", "model_version", "bound"))
FEATURE_DRIFT = MetricName(
    "recplat_feature_drift_psi", MetricKind.GAUGE, ("brand", "feature", "model_version")
)
"""Population stability index of each feature's served sample against the champion's training
distribution: the drift job's verdict (`ranking-experiments drift`), recorded as the champion's
version tags and exported by the service (`ranking_service.drift_gauges`)."""
FEATURE_DRIFT_THRESHOLD = MetricName(
    "recplat_feature_drift_psi_threshold", MetricKind.GAUGE, ("brand",)
)
"""The brand's `monitoring.drift_psi_threshold`, so panels draw the line the alert fires at."""

ALL: tuple[MetricName, ...] = (
    RANK_REQUESTS,
    RANK_LATENCY,
    RANK_EXPLORED,
    RANK_BATCH_SIZE,
    FALLBACK,
    FEEDBACK_EVENTS,
    MODEL_VERSION,
    MODEL_AGE,
    MODEL_RELOADS,
    MODEL_RELOAD_FAILURES,
    EXPERIMENT_AGE,
    EVENTS_SHIPPED,
    EVENT_SHIP_FAILURES,
    EVENTS_PENDING,
    EVENTS_QUARANTINED,
    ONLINE_CTR,
    FEATURE_DRIFT,
    FEATURE_DRIFT_THRESHOLD,
)

# The `outcome` label of RANK_REQUESTS (ranking_service counts them).
ANSWERED_OUTCOMES = ("ok", "fallback")
ATTEMPTED_OUTCOMES = ("ok", "fallback", "error")
"""Requests the service tried to answer: what a server error ratio is a share of."""
REFUSED_OUTCOMES = ("unauthorized", "invalid", "too_large")
