"""`recplat local status`: what runs, whether it is healthy, which model each brand serves,
and which alerts are pending or firing.

Everything is observed, not remembered: process liveness from the pid (and its create
time), health from each server's own endpoints, the serving model from the service's
`GET /model`, alerts from the local Prometheus's `/api/v1/alerts` (the rules infra deploys,
evaluated on the local services' metrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from recplat.local.commands import lake_argument, shell_path
from recplat.local.mlflow_tracking import mlflow_is_healthy
from recplat.local.processes import LocalPlatformError, is_same_process
from recplat.local.prometheus import PROCESS_NAME as PROMETHEUS
from recplat.local.prometheus import prometheus_is_ready
from recplat.local.prometheus_api import ActiveAlert, PrometheusApi
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


def _model_answer(service_url: str) -> Any:
    try:
        response = httpx.get(f"{service_url}/model", timeout=3.0)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def service_model(service_url: str) -> dict[str, str]:
    """Versions per alias the service at `service_url` serves right now ({} if unreachable)."""
    return serving_versions(_model_answer(service_url))


def serving_description(model: Any) -> str | None:
    """What a `GET /model` answer says is served: `fallback` first when there is no champion."""
    versions = serving_versions(model)
    parts = [f"{alias} v{version}" for alias, version in sorted(versions.items())]
    if isinstance(model, dict) and model.get("fallback") is True:
        parts.insert(0, "fallback")
    return ", ".join(parts) or None


def readiness(status_code: int, body: Any) -> str:
    """A service's `/readyz` answer in one word, as the service itself says it.

    200 `ready` serves a model; 200 `ready-fallback` serves the popularity fallback because
    no champion is loaded, which status must not pass off as plain `ready`.
    """
    said = body.get("status") if isinstance(body, dict) else None
    if status_code == 200:
        return "fallback" if said == "ready-fallback" else "ready"
    if status_code == 503 and said == "loading":
        return "loading"
    return f"HTTP {status_code}"


def _http_health(url: str) -> str:
    try:
        response = httpx.get(url, timeout=3.0)
    except httpx.HTTPError as error:
        return f"unreachable ({type(error).__name__})"
    try:
        body = response.json()
    except ValueError:
        body = None
    return readiness(response.status_code, body)


def process_statuses(state: PlatformState) -> list[ProcessStatus]:
    """Liveness and health of every recorded process."""
    statuses = []
    for record in state.processes:
        running = is_same_process(record.pid, record.create_time)
        health = "stopped"
        if running and record.name == "mlflow" and state.mlflow_url:
            health = "healthy" if mlflow_is_healthy(state.mlflow_url) else "not answering"
        elif running and record.name == PROMETHEUS and state.prometheus_url:
            health = "ready" if prometheus_is_ready(state.prometheus_url) else "not answering"
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
        serving = serving_description(_model_answer(record.service_url))
        statuses.append(
            BrandStatus(name, record.service_url, health, serving, record.training_message)
        )
    return statuses


@dataclass(frozen=True)
class AlertsStatus:
    """The local Prometheus's alerts now: how many rules it evaluates, which are active."""

    rules: int
    active: list[ActiveAlert]
    problem: str | None = None


def alerts_status(state: PlatformState) -> AlertsStatus | None:
    """Pending and firing alerts of the local Prometheus (None when the platform has none)."""
    if state.prometheus_url is None:
        return None
    api = PrometheusApi(state.prometheus_url, timeout_s=5.0)
    try:
        rules = sum(len(names) for names in api.alerting_rules().values())
        active = api.alerts()
    except LocalPlatformError as error:
        return AlertsStatus(0, [], str(error))
    # Firing first, then by brand and name.
    active.sort(key=lambda a: (a.state != "firing", a.labels.get("brand", ""), a.name))
    return AlertsStatus(rules, active)


def print_alerts(console: Console, alerts: AlertsStatus) -> None:
    """A table of the active alerts (short values, so an alert's name is never broken), then
    each one's summary on a line of its own; or one line saying none is active and how many
    rules were evaluated."""
    if alerts.problem:
        console.print(f"alerts: unknown: {alerts.problem}", markup=False, highlight=False)
        return
    if not alerts.active:
        console.print(
            f"alerts: none firing or pending ({alerts.rules} alerting rules evaluated)",
            markup=False,
        )
        return
    table = Table(title=f"alerts ({alerts.rules} alerting rules evaluated)")
    for column in ("state", "alert", "brand", "value", "since (UTC)"):
        table.add_column(column, no_wrap=True)
    for alert in alerts.active:
        state = "[red]firing[/]" if alert.state == "firing" else "[yellow]pending[/]"
        table.add_row(
            state,
            alert.name,
            alert.labels.get("brand", "-"),
            _short_value(alert.value),
            alert.active_since[11:19],
        )
    console.print(table)
    for alert in alerts.active:
        console.print(
            f"  {alert.name}: {alert.summary}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _short_value(value: str) -> str:
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return value


def print_status(console: Console, state: PlatformState) -> None:
    """Processes and brands as tables of short values, then each brand's URL, key and lake.

    URLs stay out of the tables: a table is laid out to the terminal's width and would
    break them; printed one per line (soft-wrapped), they are copied whole.
    """
    processes = Table(title=f"processes ({state.storage} storage)")
    for column in ("process", "pid", "port", "health"):
        processes.add_column(column)
    for item in process_statuses(state):
        health = item.health if item.running else "[red]stopped[/]"
        processes.add_row(item.name, str(item.pid), str(item.port or ""), health)
    console.print(processes)
    brands = Table(title="brands")
    for column in ("brand", "health", "serving", "last training"):
        # `serving` is never broken inside "champion v12"; each alias gets its own line.
        brands.add_column(column, overflow="fold", no_wrap=column == "serving")
    for brand in brand_statuses(state):
        training = brand.training.removeprefix(f"{brand.name}: ")
        serving = (brand.serving_version or "-").replace(", ", "\n")
        brands.add_row(brand.name, brand.health, serving, training)
    console.print(brands)
    for name, record in state.brands.items():
        lines = [f"{name}:"]
        if record.service_url:
            lines.append(f"  service  {record.service_url}")
            lines.append(f"  API key  {shell_path(str(record.api_key_file))} (Bearer token)")
        lines.append(f"  lake     {lake_argument(record.lake_uri)}")
        for line in lines:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    if state.mlflow_url:
        console.print(f"MLflow UI: {state.mlflow_url}", markup=False, highlight=False)
    if state.prometheus_url:
        console.print(f"Prometheus: {state.prometheus_url}", markup=False, highlight=False)
    alerts = alerts_status(state)
    if alerts is not None:
        print_alerts(console, alerts)
