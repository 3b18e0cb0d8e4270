"""Reading a Prometheus over its HTTP API: queries, ranges, alerts and the metric names it has.

Only what the local platform asks (`/api/v1/query`, `query_range`, `alerts`, `rules`,
`label/__name__/values`). A query Prometheus rejects is an answer with its error, not an
exception, because checking dashboards wants to collect every rejected query; an
unreachable Prometheus is a `LocalPlatformError` saying where it looked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from recplat.local.processes import LocalPlatformError

QUERY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Series:
    """One series of an answer: its labels and its (unix time, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


@dataclass(frozen=True)
class Answer:
    """Prometheus's answer to one query: its series, or why it rejected the query."""

    expr: str
    series: list[Series] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ActiveAlert:
    """An alert that is pending (its `for` has not elapsed yet) or firing."""

    name: str
    state: str
    labels: dict[str, str]
    active_since: str
    value: str
    summary: str


class PrometheusApi:
    """The HTTP API of the Prometheus at `url`."""

    def __init__(self, url: str, timeout_s: float = QUERY_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def query(self, expr: str, at: float) -> Answer:
        """`expr` evaluated at the unix time `at` (a Grafana "instant" query)."""
        return self._answer(expr, "query", {"query": expr, "time": f"{at:.3f}"})

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> Answer:
        """`expr` from `start` to `end` every `step_s` seconds (a Grafana "range" query)."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": step_s}
        return self._answer(expr, "query_range", params)

    def alerts(self) -> list[ActiveAlert]:
        """Every pending and firing alert."""
        alerts = []
        for alert in self._get("alerts", {})["alerts"]:
            labels = {str(k): str(v) for k, v in alert.get("labels", {}).items()}
            alerts.append(
                ActiveAlert(
                    name=labels.pop("alertname", "?"),
                    state=str(alert.get("state", "?")),
                    labels=labels,
                    active_since=str(alert.get("activeAt", "")),
                    value=str(alert.get("value", "")),
                    summary=str(alert.get("annotations", {}).get("summary", "")),
                )
            )
        return alerts

    def alerting_rules(self) -> dict[str, list[str]]:
        """The alerting rules Prometheus evaluates, by rule file."""
        found: dict[str, list[str]] = {}
        for group in self._get("rules", {"type": "alert"})["groups"]:
            names = [rule["name"] for rule in group.get("rules", [])]
            found.setdefault(str(group.get("file", "")), []).extend(names)
        return found

    def metric_names(self) -> set[str]:
        """Every metric name Prometheus holds series of (in its retention)."""
        return {str(name) for name in self._get("label/__name__/values", {})}

    def _answer(self, expr: str, endpoint: str, params: dict[str, Any]) -> Answer:
        body = self._request("POST", endpoint, params)
        if body.get("status") != "success":
            return Answer(expr, error=f"{body.get('errorType', 'error')}: {body.get('error')}")
        data = body["data"]
        series = []
        for item in data["result"]:
            labels = {str(k): str(v) for k, v in item.get("metric", {}).items()}
            if "values" in item:
                points = [(float(t), float(v)) for t, v in item["values"]]
            else:
                t, v = item["value"]
                points = [(float(t), float(v))]
            series.append(Series(labels, points))
        return Answer(expr, series)

    def _get(self, endpoint: str, params: dict[str, Any]) -> Any:
        body = self._request("GET", endpoint, params)
        if body.get("status") != "success":
            raise LocalPlatformError(
                f"Prometheus at {self.url} refused /api/v1/{endpoint}: {body.get('error')}"
            )
        return body["data"]

    def _request(self, method: str, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        # Queries are POSTed: a dashboard's expressions can be longer than a URL should be.
        url = f"{self.url}/api/v1/{endpoint}"
        try:
            if method == "POST":
                response = httpx.post(url, data=params, timeout=self.timeout_s)
            else:
                response = httpx.get(url, params=params, timeout=self.timeout_s)
        except httpx.HTTPError as error:
            raise LocalPlatformError(
                f"Prometheus at {self.url} is unreachable ({type(error).__name__}); is the "
                "local platform running? `recplat local status` shows it"
            ) from None
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            raise LocalPlatformError(
                f"Prometheus at {self.url} answered /api/v1/{endpoint} with HTTP "
                f"{response.status_code} and no JSON"
            ) from None
        return body
