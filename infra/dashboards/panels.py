"""The panel toolkit every recplat dashboard is built with: PromQL from the metric names, panels.

Queries are built from ``ranking_features.metric_names`` only, never from typed-out metric
names, so a renamed metric changes every dashboard at once (and the panel-query test, run
against a real Prometheus scraping a real service, notices a name the service no longer
exports). Panels read Prometheus through the ``datasource`` variable: Azure Managed Grafana
and Azure Monitor dashboards with Grafana each name the managed Prometheus workspace's data
source their own way, and the variable lets either pick it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cog_builder
from grafana_foundation_sdk.cog import variants as cog_variants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as prometheus_model
from ranking_features.metric_names import MetricName

DATASOURCE_VARIABLE = "datasource"
PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")
RATE = "$__rate_interval"
"""Grafana's rate window: at least four scrape intervals, whatever the scrape interval is."""
GRID_WIDTH = 24

Panels = list[cog_builder.Builder[model.Panel]]
"""Panels in the order a dashboard lays them out, left to right and row by row."""


def selector(**labels: str) -> str:
    """``{a="x",b=~"y|z"}``: a value with ``|`` matches as a regular expression."""
    parts = [
        f'{key}=~"{value}"' if "|" in value else f'{key}="{value}"' for key, value in labels.items()
    ]
    return "{" + ",".join(parts) + "}"


def rate(series: str, labels: str, by: Sequence[str] = ()) -> str:
    """Per-second rate of a counter series, summed (by ``by``)."""
    grouping = f" by ({', '.join(by)})" if by else ""
    return f"sum{grouping} (rate({series}{labels}[{RATE}]))"


def ratio(numerator: str, denominator: str) -> str:
    """``numerator / denominator``, 0 (not "no data") while the numerator has no series.

    A counter labelled with an outcome appears only once that outcome has happened, so a
    plain division shows "No data" for a brand without errors; ``or`` fills in a zero
    wherever the denominator has traffic. Both sides must be grouped by the same labels.
    """
    return f"({numerator} or (0 * {denominator})) / {denominator}"


def quantile(q: float, histogram: MetricName, labels: str, by: Sequence[str] = ()) -> str:
    """The ``q`` quantile of a histogram over the rate window."""
    return f"histogram_quantile({q:g}, {rate(histogram.bucket, labels, ('le', *by))})"


def query(expr: str, legend: str = "", ref_id: str = "A") -> prometheus.Dataquery:
    target = prometheus.Dataquery().expr(expr).ref_id(ref_id).range()
    return target.legend_format(legend) if legend else target


def _ref_ids(
    queries: Sequence[prometheus.Dataquery],
) -> list[cog_builder.Builder[cog_variants.Dataquery]]:
    """The targets, lettered A, B, C... as Grafana letters them."""
    targets: list[cog_builder.Builder[cog_variants.Dataquery]] = []
    for index, target in enumerate(queries):
        targets.append(target.ref_id(chr(ord("A") + index)))
    return targets


@dataclass(frozen=True)
class Size:
    """A panel's grid size (24 columns wide)."""

    width: int = 12
    height: int = 8


def time_series(
    title: str,
    description: str,
    queries: Sequence[prometheus.Dataquery],
    unit: str,
    size: Size = Size(),
    line_at: float | None = None,
    minimum: float | None = 0,
) -> timeseries.Panel:
    """A time series panel; ``line_at`` draws a dashed red threshold (an SLO, a limit)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .targets(_ref_ids(queries))
        .unit(unit)
        .span(size.width)
        .height(size.height)
        .fill_opacity(10)
    )
    if minimum is not None:
        panel = panel.min(minimum)
    if line_at is not None:
        panel = panel.thresholds(
            builders.ThresholdsConfig()
            .mode(model.ThresholdsMode.ABSOLUTE)
            .steps([model.Threshold(None, "green"), model.Threshold(line_at, "red")])
        ).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.DASHED)
        )
    return panel


def stat_panel(
    title: str,
    description: str,
    queries: Sequence[prometheus.Dataquery],
    unit: str,
    size: Size = Size(6, 5),
    red_from: float | None = None,
    mappings: dict[str, str] | None = None,
) -> stat.Panel:
    """The latest value of each series, red from ``red_from``."""
    steps = [model.Threshold(None, "green")]
    if red_from is not None:
        steps.append(model.Threshold(red_from, "red"))
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .targets(_ref_ids(queries))
        .unit(unit)
        .span(size.width)
        .height(size.height)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .thresholds(builders.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(steps))
    )
    if mappings:
        panel = panel.mappings(
            [
                model.ValueMap(
                    {value: model.ValueMappingResult(text=text) for value, text in mappings.items()}
                )
            ]
        )
    return panel


def table_panel(
    title: str, description: str, queries: Sequence[prometheus.Dataquery], size: Size = Size()
) -> table.Panel:
    """The latest value of each series as table rows (instant queries, labels as columns)."""
    instant = [q.instant().format(prometheus_model.PromQueryFormat.TABLE) for q in queries]
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .targets(_ref_ids(instant))
        .span(size.width)
        .height(size.height)
    )


def new_dashboard(
    uid: str, title: str, description: str, tags: Sequence[str]
) -> builders.Dashboard:
    """A dashboard reading Prometheus through the ``datasource`` variable, 6 h, 1 min refresh."""
    return (
        builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["recplat", *tags])
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("utc")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .with_variable(
            builders.DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus").type("prometheus")
        )
    )


def dashboard_json(dashboard: builders.Dashboard) -> str:
    """The Grafana dashboard JSON model, keys sorted so an unchanged dashboard diffs as equal."""
    return json.dumps(dashboard.build(), cls=JSONEncoder, sort_keys=True, indent=1)
