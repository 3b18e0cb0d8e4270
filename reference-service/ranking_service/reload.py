"""Hot reload: follow the registry's champion and challenger aliases without dropping requests.

A background thread polls the registry every `RECPLAT_RELOAD_INTERVAL_S`. When an alias points
at a new version, that version is downloaded, opened and warmed up off the request path, then
swapped in with one assignment of a new `ServedModels`. A version that fails any step is
rejected: the old model keeps serving, the failure is logged and counted, and the version is
not retried (a new version is). A failed download is not the version's fault: it is counted
and retried at the next poll. When the registry is unreachable nothing changes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from typing import Any

import fsspec
from ranking_features.snapshot import FeatureSnapshot
from ranking_features.workload_env import ServiceEnv

from ranking_service.metrics import ServiceMetrics
from ranking_service.model_store import (
    ALIASES,
    CHALLENGER,
    ModelDownloadError,
    ModelLoadError,
    RankingModel,
    ServedModels,
    load_model_version,
)
from ranking_service.settings import Settings, redact

log = logging.getLogger(__name__)


class ModelReloader:
    """Owns `served` (what serves now) and keeps it in step with the registry."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.served = ServedModels()
        self.ready = threading.Event()
        self._rejected: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="model-reloader", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            self._load_fallback_snapshot()
            self.poll_once()
        finally:
            # Ready even without a model: the fallback answers (and says so).
            self.ready.set()
        if self.served.champion is None:
            log.warning("no champion could be loaded: serving the fallback ranking")
        while not self._stop.wait(self.settings.reload_interval_s):
            try:
                self.poll_once()
            except Exception:
                # A bug in one poll must not end hot reload for the life of the pod.
                log.exception("registry poll failed; retrying at the next interval")

    def poll_once(self) -> None:
        """Look up both aliases once; load, warm up and swap in whatever changed."""
        if not self.settings.tracking_uri:
            return
        try:
            client = self._registry_client()
            wanted = {alias: self._lookup(client, alias) for alias in ALIASES}
        except Exception as error:
            self.metrics.model_reload_failures.labels(
                self.metrics.brand, "any", "registry_unreachable"
            ).inc()
            log.warning(
                "registry %s unreachable, keeping the serving models: %s",
                redact(self.settings.tracking_uri),
                _first_line(error),
            )
            return
        for alias in ALIASES:
            version = wanted[alias]
            current = self.served.for_alias(alias)
            if version is None:
                if alias == CHALLENGER and current is not None:
                    self._swap(alias, None)
                # A champion alias removed by mistake must not take the service down.
                continue
            if current is not None and current.version == str(version.version):
                continue
            key = f"{version.name}/{version.version}"
            if key in self._rejected:
                continue
            model = self._load(client, version, alias, key)
            if model is not None:
                self._swap(alias, model)

    def _load(self, client: Any, version: Any, alias: str, key: str) -> RankingModel | None:
        other = self.served.champion if alias == CHALLENGER else self.served.challenger
        if other is not None and other.version == str(version.version):
            # The challenger was promoted: the version is loaded already, only the alias moves.
            return dataclasses.replace(other, alias=alias, loaded_at=time.time())
        started = time.monotonic()
        try:
            model = load_model_version(client, version, alias, self.settings.tracking_uri)
        except ModelDownloadError as error:
            # Storage or registry trouble, not a verdict on the version: retried next poll.
            self.metrics.model_reload_failures.labels(
                self.metrics.brand, alias, "download_failed"
            ).inc()
            log.warning("%s for %s not loaded, retrying: %s", key, alias, _first_line(error))
            return None
        except ModelLoadError as error:
            reason, message = "rejected", str(error)
        except Exception as error:
            reason, message = "load_failed", f"{key}: {_first_line(error)}"
        else:
            log.info("loaded %s as %s in %.1fs (warmed up)", key, alias, time.monotonic() - started)
            return model
        self._rejected.add(key)
        self.metrics.model_reload_failures.labels(self.metrics.brand, alias, reason).inc()
        log.error("rejected %s for %s, the current model keeps serving: %s", key, alias, message)
        return None

    def _swap(self, alias: str, model: RankingModel | None) -> None:
        if alias == CHALLENGER:
            self.served = dataclasses.replace(self.served, challenger=model)
        else:
            self.served = dataclasses.replace(self.served, champion=model)
        self.metrics.model_version.labels(self.metrics.brand, alias).set(
            int(model.version) if model is not None else 0
        )
        if model is not None:
            self.metrics.model_reloads.labels(self.metrics.brand, alias).inc()
            log.info("%s now serves %s version %s", alias, model.name, model.version)
        else:
            log.info("%s alias removed: all traffic goes to the champion", alias)

    def _lookup(self, client: Any, alias: str) -> Any:
        """The ModelVersion behind `alias`, or None if the alias (or model) does not exist."""
        from mlflow.exceptions import RestException

        try:
            return client.get_model_version_by_alias(self.settings.registered_model, alias)
        except RestException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def _registry_client(self) -> Any:
        if self._client is None:
            # Bounded retries: the mlflow defaults back off for minutes on a dead registry.
            os.environ.setdefault(
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(self.settings.registry_max_retries)
            )
            os.environ.setdefault(
                "MLFLOW_HTTP_REQUEST_TIMEOUT", str(self.settings.registry_timeout_s)
            )
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
            from mlflow import MlflowClient

            uri = self.settings.tracking_uri
            self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._client

    def _load_fallback_snapshot(self) -> None:
        path = self.settings.fallback_snapshot
        if not path:
            return
        try:
            with fsspec.open(path, "rt", encoding="utf-8") as file:
                snapshot = FeatureSnapshot.from_dict(json.load(file))
        except Exception as error:
            log.error(
                "%s %s unusable: %s", ServiceEnv.variable("fallback_snapshot"), redact(path), error
            )
            return
        self.served = dataclasses.replace(self.served, fallback_snapshot=snapshot)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
