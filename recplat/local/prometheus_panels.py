"""Every dashboard panel of the local platform, asked of its Prometheus the way Grafana asks.

The dashboards are the ones infra provisions (`infra.dashboards`: the platform dashboard of
the `dev` stack and one per brand, as JSON), built for the local platform's brands. Each
panel target (`infra.dashboards.queries`) is sent as Grafana sends it over a time window:
`$brand` substituted, `$__rate_interval` computed from the window's step and the scrape
interval, range targets over the whole window and instant ones at its end.

`failures` is the check a dashboard must pass against a Prometheus that has seen traffic:
a target fails when Prometheus rejects its PromQL, when it returns no series although every
metric it reads is exported (`ranking_features.metric_names`) and no exception was declared
for it, or when it reads a `recplat_` metric that is neither declared nor in Prometheus (a
misspelled name, which a ratio's `or 0 * denominator` would otherwise hide).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recplat.local.prometheus import RULES_ENVIRONMENT, SCRAPE_INTERVAL_S
from recplat.local.prometheus_api import Answer, PrometheusApi, Series

if TYPE_CHECKING:
    from ranking_features.brand import Brand

    from infra.dashboards.queries import PanelQuery

MAX_DATA_POINTS = 200
"""Points per series Grafana asks for (about a panel's width in pixels, halved)."""
_LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass(frozen=True)
class Window:
    """The time range a dashboard shows, as unix times."""

    start: float
    end: float

    @property
    def step_s(self) -> int:
        """Grafana's `$__interval`: the range over the points asked for, at least the scrape
        interval (the data source's "Scrape interval" setting)."""
        return max(SCRAPE_INTERVAL_S, math.ceil((self.end - self.start) / MAX_DATA_POINTS))

    @property
    def rate_interval(self) -> str:
        """Grafana's `$__rate_interval`: max(`$__interval` + scrape interval, 4 x scrape
        interval), so every rate window holds at least four samples."""
        return f"{max(self.step_s + SCRAPE_INTERVAL_S, 4 * SCRAPE_INTERVAL_S)}s"


@dataclass(frozen=True)
class TargetResult:
    """One panel target, the expression sent and what Prometheus answered."""

    query: PanelQuery
    legend_format: str
    answer: Answer

    @property
    def where(self) -> str:
        return f"{self.query.dashboard} / {self.query.panel} / {self.query.ref_id}"

    def legend(self, series: Series) -> str:
        """The series' name on the panel: the target's legend format with labels filled in,
        else the series' labels, as Grafana names it."""
        if self.legend_format:
            return _LEGEND_LABEL.sub(
                lambda match: series.labels.get(match.group(1), ""), self.legend_format
            )
        labels = ", ".join(f'{k}="{v}"' for k, v in sorted(series.labels.items()))
        return "{" + labels + "}"


@dataclass(frozen=True)
class PanelResult:
    """One panel as laid out on the dashboard, with its targets' answers."""

    title: str
    kind: str
    """Grafana's panel type: timeseries, stat, table or row."""
    grid: tuple[int, int, int, int]
    """gridPos: x, y, width, height in grid units (24 columns; rows of 30 px)."""
    unit: str
    line_at: float | None
    """A time series' dashed threshold line, or the value a stat turns red from."""
    value_texts: dict[str, str]
    """Value mappings: a value (as Grafana writes it) shown as a text."""
    minimum: float | None
    targets: list[TargetResult] = field(default_factory=list)


@dataclass(frozen=True)
class DashboardResult:
    """A dashboard's panels, queried over `window`."""

    uid: str
    title: str
    window: Window
    panels: list[PanelResult]


def local_dashboards(brands: Mapping[str, Brand]) -> dict[str, str]:
    """The JSON models of the platform dashboard and each brand's, by uid: what infra
    provisions for a `dev` stack of these brands (`brands` merged for `dev`)."""
    from infra.dashboards.brand_dashboard import BrandDashboardArgs, brand_dashboard
    from infra.dashboards.panels import dashboard_json
    from infra.dashboards.platform_dashboard import PLATFORM_UID, platform_dashboard

    arguments = [BrandDashboardArgs.from_brand(brands[name]) for name in sorted(brands)]
    models = {PLATFORM_UID: dashboard_json(platform_dashboard(RULES_ENVIRONMENT, arguments))}
    for args in arguments:
        model = dashboard_json(brand_dashboard(args))
        models[json.loads(model)["uid"]] = model
    return models


def query_dashboard(api: PrometheusApi, dashboard: str, window: Window) -> DashboardResult:
    """Every panel of `dashboard` (its JSON model) with its targets' answers over `window`."""
    from infra.dashboards.queries import constant_variables, panel_queries

    model: dict[str, Any] = json.loads(dashboard)
    variables = constant_variables(model)
    queries: dict[tuple[str, str], PanelQuery] = {
        (query.panel, query.ref_id): query for query in panel_queries(model)
    }
    panels = []
    for panel in _flattened(model.get("panels", [])):
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        grid = panel["gridPos"]
        result = PanelResult(
            title=panel["title"],
            kind=panel["type"],
            grid=(grid["x"], grid["y"], grid["w"], grid["h"]),
            unit=str(defaults.get("unit", "")),
            line_at=_threshold(defaults),
            value_texts=_value_texts(defaults),
            minimum=defaults.get("min"),
        )
        for target in panel.get("targets") or []:
            query = queries[(panel["title"], target["refId"])]
            expr = query.resolved(variables, window.rate_interval)
            if query.instant:
                answer = api.query(expr, window.end)
            else:
                answer = api.query_range(expr, window.start, window.end, window.step_s)
            result.targets.append(TargetResult(query, target.get("legendFormat", ""), answer))
        panels.append(result)
    return DashboardResult(model["uid"], model["title"], window, panels)


def failures(
    dashboard: DashboardResult,
    known_metrics: Collection[str],
    no_data_expected: Collection[str] = (),
) -> list[str]:
    """Why each failing target of `dashboard` fails, in panel order (empty: all pass).

    `known_metrics` are the metric names Prometheus has (`PrometheusApi.metric_names`);
    `no_data_expected` names targets (`<panel> / <ref id>`) whose empty answer is right for
    the traffic the platform saw (a brand that never fell back has no fallback reasons).
    """
    from ranking_features import metric_names

    declared = {series for family in metric_names.ALL for series in family.series_names}
    found = []
    for panel in dashboard.panels:
        for target in panel.targets:
            query, answer = target.query, target.answer
            if not answer.ok:
                found.append(f"{target.where}: Prometheus rejects {answer.expr!r}: {answer.error}")
                continue
            unknown = sorted(query.metrics - declared - set(known_metrics))
            if unknown:
                found.append(
                    f"{target.where}: reads {', '.join(unknown)}, which is not declared in "
                    f"ranking_features.metric_names and of which Prometheus has no series "
                    f"(in {answer.expr!r})"
                )
            elif (
                not answer.series
                and query.expects_data
                and f"{query.panel} / {query.ref_id}" not in no_data_expected
            ):
                found.append(
                    f"{target.where}: no series for {answer.expr!r} "
                    f"(reads {', '.join(sorted(query.metrics))})"
                )
    return found


def _flattened(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Panels in order, a collapsed row's panels after it."""
    ordered = []
    for panel in panels:
        ordered.append(panel)
        ordered.extend(panel.get("panels") or [])
    return ordered


def _threshold(defaults: Mapping[str, Any]) -> float | None:
    steps = defaults.get("thresholds", {}).get("steps", [])
    values = [step["value"] for step in steps if step.get("value") is not None]
    return float(values[0]) if values else None


def _value_texts(defaults: Mapping[str, Any]) -> dict[str, str]:
    texts = {}
    for mapping in defaults.get("mappings", []):
        if mapping.get("type") == "value":
            for value, result in mapping.get("options", {}).items():
                texts[str(value)] = str(result.get("text", value))
    return texts
