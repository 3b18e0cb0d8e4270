"""No telemetry resource without a consumer (issue 16, "Application Insights is created but no
pod gets its connection string").

Application Insights was removed rather than wired: its component had local auth off, so
ingestion needs an Entra token (`credential=` in `configure_azure_monitor` and Monitoring
Metrics Publisher for every workload identity), and the service image does not carry
azure-monitor-opentelemetry; Prometheus metrics are the workloads' signal. If it comes back,
some workload must receive its connection string.
"""

from __future__ import annotations

from pathlib import Path

from policies.workloads import WORKLOAD_TYPES, containers, pod_spec_of
from recplat.plan import Plan

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_INSIGHTS = "azure-native:applicationinsights:Component"


def env_names(plan: Plan) -> set[str]:
    names: set[str] = set()
    for resource in plan.resources:
        if resource["type"] in WORKLOAD_TYPES:
            for container in containers(pod_spec_of(resource["type"], resource["inputs"])):
                names.update(str(item.get("name")) for item in container.get("env") or [])
    return names


def test_application_insights_exists_only_when_a_workload_gets_its_connection_string(
    plan_for: object,
) -> None:
    for stack in ("dev", "prod"):
        plan = plan_for(stack, REPO_ROOT / "brands")  # type: ignore[operator]
        components = [resource["urn"] for resource in plan.of_type(APP_INSIGHTS)]
        if components:
            assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in env_names(plan), (
                f"stack {stack}: {components} is created but no workload gets "
                "APPLICATIONINSIGHTS_CONNECTION_STRING; wire it or remove it"
            )
