"""`recplat local status`: what runs, whether it is healthy, and which model each brand serves.

Everything is observed, not remembered: process liveness from the pid (and its create
time), health from each server's own endpoints, the serving model from the service's
`GET /model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from recplat.local.mlflow_tracking import mlflow_is_healthy
from recplat.local.processes import is_same_process
from recplat.local.state import PlatformState


@dataclass(frozen=True)
class ProcessStatus:
    """One recorded process as it is now."""

    name: str
    pid: int
    port: int | None
    running: bool
    health: str


@dataclass(frozen=True)
class BrandStatus:
    """One brand as it is now."""

    name: str
    service_url: str | None
    health: str
    serving_version: str | None
    training: str


def serving_versions(model: Any) -> dict[str, str]:
    """Versions per alias from a `GET /model` answer, whatever its exact shape.

    The service answers with its serving model(s); a mapping of alias to model, a list of
    models with an `alias` field, or one model are all understood.
    """
    found: dict[str, str] = {}
    if isinstance(model, dict) and "models" in model:
        model = model["models"]
    if isinstance(model, dict) and "version" in model:
        model = [model]
    if isinstance(model, dict):
        for alias, entry in model.items():
            if isinstance(entry, dict) and entry.get("version") is not None:
                found[str(entry.get("alias", alias))] = str(entry["version"])
    elif isinstance(model, list):
        for entry in model:
            if isinstance(entry, dict) and entry.get("version") is not None:
                found[str(entry.get("alias") or entry.get("variant") or "champion")] = str(
                    entry["version"]
                )
    return found


def service_model(service_url: str) -> dict[str, str]:
    """Versions per alias the service at `service_url` serves right now ({} if unreachable)."""
    try:
        response = httpx.get(f"{service_url}/model", timeout=3.0)
    except httpx.HTTPError:
        return {}
    if response.status_code != 200:
        return {}
    return serving_versions(response.json())


def _http_health(url: str) -> str:
    try:
        response = httpx.get(url, timeout=3.0)
    except httpx.HTTPError as error:
        return f"unreachable ({type(error).__name__})"
    return "ready" if response.status_code == 200 else f"HTTP {response.status_code}"


def process_statuses(state: PlatformState) -> list[ProcessStatus]:
    """Liveness and health of every recorded process."""
    statuses = []
    for record in state.processes:
        running = is_same_process(record.pid, record.create_time)
        health = "stopped"
        if running and record.name == "mlflow" and state.mlflow_url:
            health = "healthy" if mlflow_is_healthy(state.mlflow_url) else "not answering"
        elif running and record.name.startswith("service-") and record.port:
            health = _http_health(f"http://127.0.0.1:{record.port}/readyz")
        elif running:
            health = "running"
        statuses.append(ProcessStatus(record.name, record.pid, record.port, running, health))
    return statuses


def brand_statuses(state: PlatformState) -> list[BrandStatus]:
    """Health and serving model of every brand's service."""
    statuses = []
    for name, record in state.brands.items():
        if record.service_url is None:
            statuses.append(BrandStatus(name, None, "not started", None, record.training_message))
            continue
        health = _http_health(f"{record.service_url}/readyz")
        versions = service_model(record.service_url)
        serving = ", ".join(f"{alias} v{version}" for alias, version in sorted(versions.items()))
        statuses.append(
            BrandStatus(name, record.service_url, health, serving or None, record.training_message)
        )
    return statuses
