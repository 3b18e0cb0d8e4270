"""The champion's feature drift, exported as gauges: how the drift job's verdict reaches
Prometheus, the same way locally and on AKS.

The drift job (`ranking-experiments drift`, a CronJob with training's identity) writes its
result as version tags on the champion it judged (`ranking_training.drift_job`):
`drift.psi.<feature>`, `drift.psi_threshold`, `drift.evaluated_at`. A job that has ended
cannot be scraped, and training's identity may not write to the lake; the registry is what
both can reach. This thread reads the champion's tags every `RECPLAT_RELOAD_INTERVAL_S`, as
the reloader reads its aliases, and sets `recplat_feature_drift_psi{brand,feature,
model_version}` and `recplat_feature_drift_psi_threshold{brand}`; the service is already
scraped (a PodMonitor on AKS, the local Prometheus locally), so no exporter or pushgateway is
added. A version without drift tags (a new champion, not judged yet) exports no drift series,
so an alert never holds on to a model that no longer serves.

The job writes a verdict's tags one at a time, `drift.evaluated_at` last. Once a version has
that tag, its figures are read again only when the tag changes, so a poll during a write keeps
the previous verdict whole instead of exporting one half old and half new (which made alerts
for one verdict start on different rule evaluations).

The online CTR takes the same road: the experiment evaluator (`ranking-experiments evaluate`)
tags each arm's version with its CTR and user-clustered 95 % interval (`online.ctr`,
`online.ctr_low`, `online.ctr_high`), and this thread exports the champion's and the
challenger's as `recplat_online_ctr{brand,model_version,bound=estimate|lower|upper}`.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from typing import Any

from ranking_features.mlflow_names import (
    DRIFT_EVALUATED_AT_TAG,
    DRIFT_PSI_TAG_PREFIX,
    DRIFT_THRESHOLD_TAG,
    ONLINE_CTR_HIGH_TAG,
    ONLINE_CTR_LOW_TAG,
    ONLINE_CTR_TAG,
)

from ranking_service.metrics import ServiceMetrics
from ranking_service.model_store import CHALLENGER, CHAMPION
from ranking_service.settings import Settings, redact

log = logging.getLogger(__name__)

# What the experiment evaluator writes on each arm's version (ranking_training.experiment_job).
ONLINE_CTR_TAGS = {
    "estimate": ONLINE_CTR_TAG,
    "lower": ONLINE_CTR_LOW_TAG,
    "upper": ONLINE_CTR_HIGH_TAG,
}


def online_ctr_figures(tags: dict[str, str]) -> dict[str, float]:
    """bound -> value of a version's online CTR tags; empty unless all three are numbers."""
    values = {
        bound: _number(tag, tags[tag]) for bound, tag in ONLINE_CTR_TAGS.items() if tag in tags
    }
    if len(values) < len(ONLINE_CTR_TAGS) or any(v is None for v in values.values()):
        return {}
    return {bound: float(value) for bound, value in values.items() if value is not None}


def drift_figures(tags: dict[str, str]) -> tuple[dict[str, float], float | None]:
    """The per-feature PSI and the threshold in a version's tags; unreadable values are left
    out (logged), never exported as a number they are not."""
    psi: dict[str, float] = {}
    for key, text in tags.items():
        if key.startswith(DRIFT_PSI_TAG_PREFIX):
            value = _number(key, text)
            if value is not None:
                psi[key.removeprefix(DRIFT_PSI_TAG_PREFIX)] = value
    threshold = (
        _number(DRIFT_THRESHOLD_TAG, tags[DRIFT_THRESHOLD_TAG])
        if DRIFT_THRESHOLD_TAG in tags
        else None
    )
    return psi, threshold


def _number(key: str, text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        log.warning("champion tag %s=%r is not a finite number: not exported", key, text)
        return None
    return value


class DriftGauges:
    """Polls the champion's drift tags and keeps the two drift gauges equal to them."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics, after: threading.Event) -> None:
        """`after` is set once the model reloader's first poll is done: mlflow is imported
        by then (importing it from two threads at once leaves it half-initialised)."""
        self.settings = settings
        self.metrics = metrics
        self._after = after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._exported: tuple[str, dict[str, float], float | None] | None = None
        # (version, drift.evaluated_at) of the verdict read last, and its figures.
        self._verdict: tuple[str, str] | None = None
        self._figures: tuple[dict[str, float], float | None] = ({}, None)
        self._online: dict[str, dict[str, float]] | None = None

    def start(self) -> None:
        if not self.settings.tracking_uri:
            return
        self._thread = threading.Thread(target=self._run, name="drift-gauges", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._after.wait(1.0):
            if self._stop.is_set():
                return
        while True:
            try:
                self.poll_once()
            except Exception as error:  # a registry outage must not end the thread
                log.warning(
                    "drift tags of the champion not read from %s: %s",
                    redact(self.settings.tracking_uri),
                    str(error).splitlines()[0] if str(error) else type(error).__name__,
                )
            if self._stop.wait(self.settings.reload_interval_s):
                return

    def poll_once(self) -> None:
        """Read the champion's tags once and export what they say."""
        from mlflow.exceptions import RestException

        try:
            version = self._registry().get_model_version_by_alias(
                self.settings.registered_model, CHAMPION
            )
        except RestException as error:
            if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
            self.export(None, {}, None)
            self.export_online_ctr({})
            return
        tags = dict(version.tags or {})
        stamp = tags.get(DRIFT_EVALUATED_AT_TAG)
        verdict = (str(version.version), stamp) if stamp is not None else None
        if verdict is None or verdict != self._verdict:
            self._figures = drift_figures(tags)
        self._verdict = verdict
        self.export(str(version.version), *self._figures)
        online = {str(version.version): online_ctr_figures(dict(version.tags or {}))}
        try:
            challenger = self._registry().get_model_version_by_alias(
                self.settings.registered_model, CHALLENGER
            )
        except RestException as error:
            if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
        else:
            online[str(challenger.version)] = online_ctr_figures(dict(challenger.tags or {}))
        self.export_online_ctr(online)

    def export_online_ctr(self, versions: dict[str, dict[str, float]]) -> None:
        """`recplat_online_ctr` for exactly these versions (the serving ones with figures)."""
        wanted = {version: figures for version, figures in versions.items() if figures}
        if wanted == self._online:
            return
        gauge = self.metrics.online_ctr
        gauge.clear()
        for version, figures in sorted(wanted.items()):
            for bound, value in figures.items():
                gauge.labels(self.metrics.brand, version, bound).set(value)
        self._online = wanted

    def export(self, version: str | None, psi: dict[str, float], threshold: float | None) -> None:
        """Make the gauges say exactly this (series of another version removed)."""
        wanted = (version or "", psi, threshold)
        if wanted == self._exported:
            return
        brand = self.metrics.brand
        self.metrics.feature_drift_psi.clear()
        self.metrics.feature_drift_psi_threshold.clear()
        if version is not None and psi:
            for feature, value in sorted(psi.items()):
                self.metrics.feature_drift_psi.labels(brand, feature, version).set(value)
            if threshold is not None:
                self.metrics.feature_drift_psi_threshold.labels(brand).set(threshold)
            log.info(
                "champion v%s feature drift: max PSI %.4f (%s), threshold %s",
                version,
                max(psi.values()),
                max(psi, key=lambda feature: psi[feature]),
                threshold,
            )
        self._exported = wanted

    def _registry(self) -> Any:
        if self._client is None:
            # The reloader's bounds (RECPLAT_REGISTRY_*), so a dead registry costs seconds.
            os.environ.setdefault(
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(self.settings.registry_max_retries)
            )
            os.environ.setdefault(
                "MLFLOW_HTTP_REQUEST_TIMEOUT", str(self.settings.registry_timeout_s)
            )
            from mlflow import MlflowClient

            uri = self.settings.tracking_uri
            self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._client
