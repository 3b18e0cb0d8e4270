"""Prometheus metrics of one ranking service (docs/architecture.md, "Contracts").

Each family is registered from its ``ranking_features.metric_names.MetricName`` (name, kind,
labels), the names the dashboards and alert rules query. Each app gets its own registry, so two
apps in one process (tests) never share counters.
The latency buckets are dense below 50 ms, where brands set their `latency_slo_ms`, so an
alert on "p99 above the SLO" resolves.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from ranking_features import metric_names
from ranking_features.metric_names import MetricKind, MetricName

LATENCY_BUCKETS = (
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.025,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    2.5,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

HELP: dict[MetricName, str] = {
    metric_names.RANK_REQUESTS: (
        "Ranking requests by variant and outcome: answered (ok, fallback), failed on the "
        "server's side (error: 5xx) or refused as the client's fault (unauthorized: "
        "401/403, invalid: 422, too_large: 413)."
    ),
    metric_names.RANK_LATENCY: "Time to answer POST /rank, from request body to response.",
    metric_names.RANK_EXPLORED: (
        "Ranking requests answered with a random permutation of the model's top 2k "
        "(exploration, logged with propensities); its share of the ok requests is "
        "RECPLAT_EXPLORATION."
    ),
    metric_names.RANK_BATCH_SIZE: (
        "Requests featurised and scored together (adaptive batching; 1 when idle)."
    ),
    metric_names.FALLBACK: "Rankings answered without a model (popularity or given order).",
    metric_names.FEEDBACK_EVENTS: "Feedback events accepted (durable locally) by type.",
    metric_names.MODEL_VERSION: "Registry version of the model serving each alias (0: none).",
    metric_names.MODEL_AGE: "Seconds since the serving model version was registered.",
    metric_names.EXPERIMENT_AGE: (
        "Seconds since the running online experiment started (the served challenger's "
        "`experiment.started_at` tag); 0 when none runs. The evaluator should decide before "
        "promotion.max_experiment_days; an alert fires when it has not."
    ),
    metric_names.MODEL_RELOADS: "Model versions loaded, warmed up and swapped in.",
    metric_names.MODEL_RELOAD_FAILURES: (
        "Model versions rejected or registry polls that failed, by reason."
    ),
    metric_names.EVENTS_SHIPPED: "Events written to the lake as parquet, by kind.",
    metric_names.EVENT_SHIP_FAILURES: (
        "Failed attempts to ship an event segment to the lake (retried, or quarantined "
        "when the segment itself is at fault)."
    ),
    metric_names.EVENTS_PENDING: "Local event segments waiting to be shipped to the lake.",
    metric_names.EVENTS_QUARANTINED: (
        "Local event segments that cannot be shipped, kept in the quarantine folder."
    ),
    metric_names.FEATURE_DRIFT: (
        "Population stability index of each feature's served sample against the champion "
        "version's training distribution, as the drift job last judged it."
    ),
    metric_names.ONLINE_CTR: (
        "Requests with a click / requests of a model version in its last online "
        "experiment evaluation, with its user-clustered 95 % interval (bound=lower|upper)."
    ),
    metric_names.FEATURE_DRIFT_THRESHOLD: (
        "The brand's monitoring.drift_psi_threshold: a feature's PSI above it alerts."
    ),
}
"""The HELP line `/metrics` gives each family the service exports."""

BUCKETS: dict[MetricName, tuple[float, ...]] = {
    metric_names.RANK_LATENCY: LATENCY_BUCKETS,
    metric_names.RANK_BATCH_SIZE: (1, 2, 4, 8, 16, 32, 64),
}


def _checked(metric: MetricName, kind: MetricKind) -> None:
    if metric.kind is not kind:
        raise ValueError(f"{metric.name} is a {metric.kind} in metric_names, not a {kind}")


def counter(metric: MetricName, registry: CollectorRegistry) -> Counter:
    """Register the counter family ``metric`` (exposed as ``metric.total``)."""
    _checked(metric, MetricKind.COUNTER)
    return Counter(metric.name, HELP[metric], metric.labels, registry=registry)


def gauge(metric: MetricName, registry: CollectorRegistry) -> Gauge:
    """Register the gauge family ``metric``."""
    _checked(metric, MetricKind.GAUGE)
    return Gauge(metric.name, HELP[metric], metric.labels, registry=registry)


def histogram(metric: MetricName, registry: CollectorRegistry) -> Histogram:
    """Register the histogram family ``metric`` with its ``BUCKETS``."""
    _checked(metric, MetricKind.HISTOGRAM)
    return Histogram(
        metric.name, HELP[metric], metric.labels, buckets=BUCKETS[metric], registry=registry
    )


class ServiceMetrics:
    """Every metric the service exports, labelled with its brand."""

    def __init__(self, brand: str) -> None:
        self.brand = brand
        self._rank_counters: dict[tuple[str, str], Any] = {}
        self._rank_histograms: dict[str, Any] = {}
        self._explored_counters: dict[str, Any] = {}
        self.registry = r = CollectorRegistry()
        self.rank_requests = counter(metric_names.RANK_REQUESTS, r)
        self.rank_latency = histogram(metric_names.RANK_LATENCY, r)
        self.rank_explored = counter(metric_names.RANK_EXPLORED, r)
        self.rank_batch_size = histogram(metric_names.RANK_BATCH_SIZE, r)
        self.fallback = counter(metric_names.FALLBACK, r)
        self.feedback_events = counter(metric_names.FEEDBACK_EVENTS, r)
        self.model_version = gauge(metric_names.MODEL_VERSION, r)
        self.model_age = gauge(metric_names.MODEL_AGE, r)
        self.experiment_age = gauge(metric_names.EXPERIMENT_AGE, r)
        self.model_reloads = counter(metric_names.MODEL_RELOADS, r)
        self.model_reload_failures = counter(metric_names.MODEL_RELOAD_FAILURES, r)
        self.events_shipped = counter(metric_names.EVENTS_SHIPPED, r)
        self.event_ship_failures = counter(metric_names.EVENT_SHIP_FAILURES, r)
        self.events_pending = gauge(metric_names.EVENTS_PENDING, r)
        self.events_quarantined = gauge(metric_names.EVENTS_QUARANTINED, r)
        # Set from the champion's drift tags, written by the drift job (drift_gauges).
        self.feature_drift_psi = gauge(metric_names.FEATURE_DRIFT, r)
        # Set from the online CTR tags the experiment evaluator writes on each arm's version
        # (drift_gauges, which reads the champion's and the challenger's tags).
        self.online_ctr = gauge(metric_names.ONLINE_CTR, r)
        self.feature_drift_psi_threshold = gauge(metric_names.FEATURE_DRIFT_THRESHOLD, r)

    def count_rank(self, variant: str, outcome: str, seconds: float | None = None) -> None:
        """Count one /rank answer (and its latency); the labelled children are looked up once."""
        key = (variant, outcome)
        counter = self._rank_counters.get(key)
        if counter is None:
            counter = self._rank_counters[key] = self.rank_requests.labels(self.brand, *key)
        counter.inc()
        if seconds is not None:
            histogram = self._rank_histograms.get(variant)
            if histogram is None:
                histogram = self.rank_latency.labels(self.brand, variant)
                self._rank_histograms[variant] = histogram
            histogram.observe(seconds)

    def count_explored(self, variant: str) -> None:
        """Count one explored /rank answer."""
        counter = self._explored_counters.get(variant)
        if counter is None:
            counter = self._explored_counters[variant] = self.rank_explored.labels(
                self.brand, variant
            )
        counter.inc()

    def set_experiment_age(self, started_at: float | None, now: float) -> None:
        """Export the running experiment's age (0 when no experiment runs)."""
        self.experiment_age.labels(self.brand).set(
            max(0.0, now - started_at) if started_at is not None else 0.0
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
