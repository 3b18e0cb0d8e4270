"""One Grafana dashboard provisioned as Azure resources, with no Grafana credential.

``Microsoft.Dashboard/dashboards`` (Azure Monitor dashboards with Grafana) holds a Grafana
dashboard JSON model as its ``default`` definition. It is created through Azure Resource
Manager like every other resource here: no Grafana service account token to mint, store or
rotate, no reachability of the Grafana data plane from the deploying runner, access by Azure
RBAC, and tags like the rest. The same JSON imports unchanged into the environment's Azure
Managed Grafana (its panels read Prometheus through the ``datasource`` variable).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import dashboard

DEFINITION_NAME = "default"
_NAME = r"[a-zA-Z0-9][a-zA-Z0-9-]{1,62}[a-zA-Z0-9]"


@dataclass(frozen=True)
class AzureDashboardArgs:
    """Inputs of ``AzureDashboard``."""

    dashboard_name: str
    definition: str
    """The Grafana dashboard JSON model (``infra.dashboards.panels.dashboard_json``)."""
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    tags: dict[str, str]

    def __post_init__(self) -> None:
        if not re.fullmatch(_NAME, self.dashboard_name):
            raise ValueError(
                f"dashboard name {self.dashboard_name!r}: must match {_NAME} "
                "(letters, digits and hyphens, 3 to 64)"
            )


class AzureDashboard(pulumi.ComponentResource):
    """A managed dashboard and its definition."""

    dashboard_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: AzureDashboardArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:dashboards:AzureDashboard", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        managed = dashboard.Dashboard(
            name,
            dashboard_name=args.dashboard_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=args.tags,
            opts=child,
        )
        dashboard.DashboardDefinition(
            f"{name}-definition",
            dashboard_name=managed.name,
            resource_group_name=args.resource_group_name,
            definition_name=DEFINITION_NAME,
            properties=dashboard.DashboardDefinitionPropertiesArgs(serialized_data=args.definition),
            opts=child,
        )
        self.dashboard_id = managed.id
        self.register_outputs({"dashboardId": self.dashboard_id})
