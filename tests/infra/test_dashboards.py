"""Dashboards in the plan: a platform dashboard and one per brand, from the names the service
exports (the queries themselves run against a real Prometheus in test_dashboards_prometheus)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ranking_features import metric_names
from ranking_service.metrics import ServiceMetrics

from infra.dashboards.queries import constant_variables, panel_queries
from recplat.plan import Plan

REPO = Path(__file__).resolve().parents[2]
DEFINITION = "azure-native:dashboard:DashboardDefinition"
DASHBOARD = "azure-native:dashboard:Dashboard"


def _definitions(plan: Plan) -> dict[str, dict[str, object]]:
    """Each definition's dashboard JSON model, by the brand that owns it (None: platform)."""
    found = {}
    for resource in plan.of_type(DEFINITION):
        data = resource["inputs"]["properties"]["serializedData"]
        found[str(plan.brand_of(resource["urn"]))] = json.loads(data)
    return found


def test_every_brand_of_the_stack_has_its_dashboard_and_the_platform_one_lists_them(
    plan_for: Callable[[str, Path | None], Plan],
) -> None:
    for stack, brands in (
        ("dev", {"newsroom", "shopsmart", "streamly"}),
        ("prod", {"newsroom", "streamly"}),
    ):
        plan = plan_for(stack, REPO / "brands")
        definitions = _definitions(plan)
        assert set(definitions) == {*brands, "None"}, f"stack {stack}: {sorted(definitions)}"
        for brand in brands:
            assert constant_variables(definitions[brand]) == {"brand": brand}
        per_brand = [
            q for q in panel_queries(definitions["None"]) if q.panel == "p99 latency / SLO"
        ]
        assert len(per_brand) == len(brands), f"stack {stack}: one p99/SLO query per brand"
        for dashboard in plan.of_type(DASHBOARD):
            tags = dashboard["inputs"]["tags"]
            assert tags["managed-by"] == "pulumi", dashboard["urn"]


def test_the_newsroom_dashboard_draws_its_own_slo(
    plan_for: Callable[[str, Path | None], Plan],
) -> None:
    newsroom = _definitions(plan_for("dev", REPO / "brands"))["newsroom"]
    panels: list[dict[str, Any]] = newsroom["panels"]  # type: ignore[assignment]
    latency = next(p for p in panels if str(p["title"]).startswith("Latency percentiles"))
    steps = latency["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [step["value"] for step in steps] == [None, 0.04], "newsroom's latency_slo_ms is 40"


def test_the_metric_names_dashboards_read_are_the_ones_the_service_registers() -> None:
    registered = {family.name for family in ServiceMetrics("acme").registry.collect()}
    for metric in metric_names.ALL:
        if metric.exported:
            assert metric.name in registered, f"{metric.name}: the service registers no such metric"
        else:
            assert metric.name not in registered, (
                f"{metric.name} is exported now: set exported=True in ranking_features.metric_names"
            )


def test_a_panel_says_no_data_only_while_a_metric_it_reads_is_not_exported(
    plan_for: Callable[[str, Path | None], Plan],
) -> None:
    for owner, definition in _definitions(plan_for("dev", REPO / "brands")).items():
        waiting = {q.panel for q in panel_queries(definition) if not q.expects_data}
        panels: list[dict[str, Any]] = definition["panels"]  # type: ignore[assignment]
        for panel in panels:
            if "No data" in str(panel.get("description", "")):
                assert panel["title"] in waiting, (
                    f"dashboard of {owner}: panel {panel['title']!r} says it has no data, yet "
                    f"the service exports every metric it reads: {panel['description']!r}"
                )
