"""Prometheus metrics of one ranking service (docs/architecture.md, "Contracts").

Each app gets its own registry, so two apps in one process (tests) never share counters.
The latency buckets are dense below 50 ms, where brands set their `latency_slo_ms`, so an
alert on "p99 above the SLO" resolves.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from ranking_features.workload_env import ServiceEnv

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


class ServiceMetrics:
    """Every metric the service exports, labelled with its brand."""

    def __init__(self, brand: str) -> None:
        self.brand = brand
        self._rank_counters: dict[tuple[str, str], Any] = {}
        self._rank_histograms: dict[str, Any] = {}
        self._explored_counters: dict[str, Any] = {}
        self.registry = CollectorRegistry()
        r = self.registry
        self.rank_requests = Counter(
            "recplat_rank_requests",
            "Ranking requests by variant and outcome: answered (ok, fallback), failed on the "
            "server's side (error: 5xx) or refused as the client's fault (unauthorized: "
            "401/403, invalid: 422, too_large: 413).",
            ["brand", "variant", "outcome"],
            registry=r,
        )
        self.rank_latency = Histogram(
            "recplat_rank_latency_seconds",
            "Time to answer POST /rank, from request body to response.",
            ["brand", "variant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rank_explored = Counter(
            "recplat_rank_explored",
            "Ranking requests answered with a random permutation of the model's top 2k "
            "(exploration, logged with propensities); its share of the ok requests is "
            f"{ServiceEnv.variable('exploration')}.",
            ["brand", "variant"],
            registry=r,
        )
        self.rank_batch_size = Histogram(
            "recplat_rank_batch_size",
            "Requests featurised and scored together (adaptive batching; 1 when idle).",
            ["brand"],
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.fallback = Counter(
            "recplat_fallback",
            "Rankings answered without a model (popularity or given order).",
            ["brand", "reason"],
            registry=r,
        )
        self.feedback_events = Counter(
            "recplat_feedback_events",
            "Feedback events accepted (durable locally) by type.",
            ["brand", "type"],
            registry=r,
        )
        self.model_version = Gauge(
            "recplat_model_version",
            "Registry version of the model serving each alias (0: none).",
            ["brand", "alias"],
            registry=r,
        )
        self.model_age = Gauge(
            "recplat_model_age_seconds",
            "Seconds since the serving model version was registered.",
            ["brand", "alias"],
            registry=r,
        )
        self.experiment_age = Gauge(
            "recplat_experiment_age_seconds",
            "Seconds since the running online experiment started (the served challenger's "
            "`experiment.started_at` tag); 0 when none runs. The evaluator should decide before "
            "promotion.max_experiment_days; an alert fires when it has not.",
            ["brand"],
            registry=r,
        )
        self.model_reloads = Counter(
            "recplat_model_reloads",
            "Model versions loaded, warmed up and swapped in.",
            ["brand", "alias"],
            registry=r,
        )
        self.model_reload_failures = Counter(
            "recplat_model_reload_failures",
            "Model versions rejected or registry polls that failed, by reason.",
            ["brand", "alias", "reason"],
            registry=r,
        )
        self.events_shipped = Counter(
            "recplat_events_shipped",
            "Events written to the lake as parquet, by kind.",
            ["brand", "kind"],
            registry=r,
        )
        self.event_ship_failures = Counter(
            "recplat_event_ship_failures",
            "Failed attempts to ship an event segment to the lake (retried, or quarantined "
            "when the segment itself is at fault).",
            ["brand", "kind"],
            registry=r,
        )
        self.events_pending = Gauge(
            "recplat_events_pending_segments",
            "Local event segments waiting to be shipped to the lake.",
            ["brand"],
            registry=r,
        )
        self.events_quarantined = Gauge(
            "recplat_events_quarantined_segments",
            "Local event segments that cannot be shipped, kept in the quarantine folder.",
            ["brand", "kind"],
            registry=r,
        )
        # Set from the champion's drift tags, written by the drift job (drift_gauges).
        self.feature_drift_psi = Gauge(
            "recplat_feature_drift_psi",
            "Population stability index of each feature's served sample against the champion "
            "version's training distribution, as the drift job last judged it.",
            ["brand", "feature", "model_version"],
            registry=r,
        )
        # Set from the online CTR tags the experiment evaluator writes on each arm's version
        # (drift_gauges, which reads the champion's and the challenger's tags).
        self.online_ctr = Gauge(
            "recplat_online_ctr",
            "Requests with a click / requests of a model version in its last online "
            "experiment evaluation, with its user-clustered 95 % interval (bound=lower|upper).",
            ["brand", "model_version", "bound"],
            registry=r,
        )
        self.feature_drift_psi_threshold = Gauge(
            "recplat_feature_drift_psi_threshold",
            "The brand's monitoring.drift_psi_threshold: a feature's PSI above it alerts.",
            ["brand"],
            registry=r,
        )

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
