"""Environment monitoring: logs, managed Prometheus, Grafana, the action group, the dashboard.

``Monitoring`` exists before the cluster (the cluster's Container Insights add-on needs the
Log Analytics workspace); ``infra.cluster_monitoring.ClusterMonitoring`` attaches the
cluster to what is created here, and loads the platform alert rules, once the cluster exists.

Container Insights signs in with its managed identity (``useAADAuth``), and then the
add-on alone collects nothing: like Microsoft's ARM template for that mode, a data
collection rule (the ``ContainerInsights`` extension into the Log Analytics
workspace) is created here and associated with the cluster in ``ClusterMonitoring``.
Whoever deploys gets Grafana Admin, so somebody can open Grafana.
The platform dashboard (every brand at a glance) is provisioned here too; each brand's own
dashboard comes with its BrandStack (``infra.dashboards``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import dashboard, monitor, operationalinsights

from infra import azure_roles
from infra.config import MonitoringConfig
from infra.dashboards.azure_dashboard import AzureDashboard, AzureDashboardArgs
from infra.dashboards.brand_dashboard import BrandDashboardArgs
from infra.dashboards.panels import dashboard_json
from infra.dashboards.platform_dashboard import platform_dashboard
from infra.environment_names import EnvironmentNames

_PROMETHEUS_STREAM = "Microsoft-PrometheusMetrics"
# Container Insights with managed identity auth (Microsoft's ARM template for useAADAuth).
CONTAINER_INSIGHTS_STREAM = "Microsoft-ContainerInsights-Group-Default"


@dataclass(frozen=True)
class MonitoringArgs:
    """Inputs of ``Monitoring``."""

    names: EnvironmentNames
    config: MonitoringConfig
    subscription_id: str
    resource_group_name: pulumi.Input[str]
    location: str
    admin_group_object_ids: list[str]
    tags: dict[str, str]
    deployer_object_id: pulumi.Input[str] | None = None
    """Whoever runs ``pulumi up``: made Grafana Admin, so the first deploy has a Grafana user."""
    deployer_principal_type: str = "User"
    dashboard_brands: Sequence[BrandDashboardArgs] = ()
    """The stack's brands, shown on the platform dashboard (none: no platform dashboard)."""


class Monitoring(pulumi.ComponentResource):
    """Log Analytics, Azure Monitor workspace with DCE/DCR, Grafana, action group."""

    log_analytics_workspace_id: pulumi.Output[str]
    monitor_workspace_id: pulumi.Output[str]
    data_collection_endpoint_id: pulumi.Output[str]
    data_collection_rule_id: pulumi.Output[str]
    container_insights_rule_id: pulumi.Output[str]
    action_group_id: pulumi.Output[str]
    grafana_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:monitoring:Monitoring", name, None, opts)
        names, rg, location, tags = args.names, args.resource_group_name, args.location, args.tags

        logs = operationalinsights.Workspace(
            f"{name}-logs",
            workspace_name=names.log_analytics,
            resource_group_name=rg,
            location=location,
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=args.config.log_retention_days,
            features=operationalinsights.WorkspaceFeaturesArgs(disable_local_auth=True),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        workspace = monitor.AzureMonitorWorkspace(
            f"{name}-prometheus",
            azure_monitor_workspace_name=names.monitor_workspace,
            resource_group_name=rg,
            location=location,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        endpoint, rule = self._prometheus_collection(name, args, workspace)
        container_insights = self._container_insights_rule(name, args, logs)
        grafana = self._grafana(name, args, workspace)
        action_group = self._action_group(name, args)
        if args.dashboard_brands:
            self._platform_dashboard(name, args)

        self.log_analytics_workspace_id = logs.id
        self.monitor_workspace_id = workspace.id
        self.data_collection_endpoint_id = endpoint.id
        self.data_collection_rule_id = rule.id
        self.container_insights_rule_id = container_insights.id
        self.action_group_id = action_group.id
        self.grafana_url = grafana.properties.apply(lambda props: props.endpoint or "")
        self.register_outputs(
            {
                "logAnalyticsWorkspaceId": self.log_analytics_workspace_id,
                "monitorWorkspaceId": self.monitor_workspace_id,
                "actionGroupId": self.action_group_id,
                "grafanaUrl": self.grafana_url,
            }
        )

    def _prometheus_collection(
        self, name: str, args: MonitoringArgs, workspace: monitor.AzureMonitorWorkspace
    ) -> tuple[monitor.DataCollectionEndpoint, monitor.DataCollectionRule]:
        """The endpoint and rule through which the cluster's metrics reach ``workspace``."""
        stack = args.names.stack
        endpoint = monitor.DataCollectionEndpoint(
            f"{name}-dce",
            data_collection_endpoint_name=f"dce-recplat-{stack}",
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="Linux",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        rule = monitor.DataCollectionRule(
            f"{name}-dcr",
            data_collection_rule_name=f"dcr-recplat-{stack}-prometheus",
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="Linux",
            data_collection_endpoint_id=endpoint.id,
            data_sources=monitor.DataCollectionRuleDataSourcesArgs(
                prometheus_forwarder=[
                    monitor.PrometheusForwarderDataSourceArgs(
                        name="PrometheusDataSource", streams=[_PROMETHEUS_STREAM]
                    )
                ]
            ),
            destinations=monitor.DataCollectionRuleDestinationsArgs(
                monitoring_accounts=[
                    monitor.MonitoringAccountDestinationArgs(
                        name="MonitoringAccount", account_resource_id=workspace.id
                    )
                ]
            ),
            data_flows=[
                monitor.DataFlowArgs(
                    streams=[_PROMETHEUS_STREAM], destinations=["MonitoringAccount"]
                )
            ],
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return endpoint, rule

    def _container_insights_rule(
        self, name: str, args: MonitoringArgs, logs: operationalinsights.Workspace
    ) -> monitor.DataCollectionRule:
        """The ContainerInsights extension's rule into ``logs`` (the add-on alone collects
        nothing when it signs in with its managed identity)."""
        return monitor.DataCollectionRule(
            f"{name}-container-insights-dcr",
            data_collection_rule_name=f"MSCI-{args.location}-{args.names.cluster}"[:64],
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="Linux",
            description="Container Insights (managed identity auth) into Log Analytics",
            data_sources=monitor.DataCollectionRuleDataSourcesArgs(
                extensions=[
                    monitor.ExtensionDataSourceArgs(
                        name="ContainerInsightsExtension",
                        extension_name="ContainerInsights",
                        streams=[CONTAINER_INSIGHTS_STREAM],
                        extension_settings={
                            "dataCollectionSettings": {
                                "interval": "1m",
                                "namespaceFilteringMode": "Off",
                                "enableContainerLogV2": True,
                            }
                        },
                    )
                ]
            ),
            destinations=monitor.DataCollectionRuleDestinationsArgs(
                log_analytics=[
                    monitor.LogAnalyticsDestinationArgs(
                        name="ciworkspace", workspace_resource_id=logs.id
                    )
                ]
            ),
            data_flows=[
                monitor.DataFlowArgs(
                    streams=[CONTAINER_INSIGHTS_STREAM], destinations=["ciworkspace"]
                )
            ],
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _grafana(
        self, name: str, args: MonitoringArgs, workspace: monitor.AzureMonitorWorkspace
    ) -> dashboard.Grafana:
        """Managed Grafana reading ``workspace``, with the deployer and admin groups as admins."""
        grafana = dashboard.Grafana(
            f"{name}-grafana",
            workspace_name=args.names.grafana,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=dashboard.ResourceSkuArgs(name="Standard"),
            identity=dashboard.ManagedServiceIdentityArgs(type="SystemAssigned"),
            properties=dashboard.ManagedGrafanaPropertiesArgs(
                api_key="Disabled",
                deterministic_outbound_ip="Disabled",
                public_network_access="Enabled"
                if args.config.grafana_public_access
                else "Disabled",
                zone_redundancy="Disabled",
                grafana_integrations=dashboard.GrafanaIntegrationsArgs(
                    azure_monitor_workspace_integrations=[
                        dashboard.AzureMonitorWorkspaceIntegrationArgs(
                            azure_monitor_workspace_resource_id=workspace.id
                        )
                    ]
                ),
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        azure_roles.assign_role(
            f"{name}-grafana-reads-metrics",
            subscription_id=args.subscription_id,
            role=azure_roles.MONITORING_DATA_READER,
            principal_id=grafana.identity.apply(
                lambda identity: (identity.principal_id if identity else None) or ""
            ),
            principal_type="ServicePrincipal",
            scope=workspace.id,
            parent=self,
        )
        self._grafana_admins(name, args, grafana)
        return grafana

    def _grafana_admins(self, name: str, args: MonitoringArgs, grafana: dashboard.Grafana) -> None:
        """Grafana Admin for the deployer (so the first deploy has a user) and admin groups."""
        if args.deployer_object_id is not None:
            azure_roles.assign_role(
                f"{name}-grafana-admin-deployer",
                subscription_id=args.subscription_id,
                role=azure_roles.GRAFANA_ADMIN,
                principal_id=args.deployer_object_id,
                principal_type=args.deployer_principal_type,
                scope=grafana.id,
                parent=self,
            )
        for index, group in enumerate(args.admin_group_object_ids):
            azure_roles.assign_role(
                f"{name}-grafana-admin-{index}",
                subscription_id=args.subscription_id,
                role=azure_roles.GRAFANA_ADMIN,
                principal_id=group,
                principal_type="Group",
                scope=grafana.id,
                parent=self,
            )

    def _action_group(self, name: str, args: MonitoringArgs) -> monitor.ActionGroup:
        """Where every platform and brand alert goes: the platform on-call's mailbox."""
        return monitor.ActionGroup(
            f"{name}-action-group",
            action_group_name=f"ag-recplat-{args.names.stack}",
            group_short_name=f"recplat{args.names.stack}"[:12],
            resource_group_name=args.resource_group_name,
            location="global",
            enabled=True,
            email_receivers=[
                monitor.MicrosoftCommonEmailReceiverArgs(
                    name="platform-oncall",
                    email_address=args.config.alert_email,
                    use_common_alert_schema=True,
                )
            ],
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _platform_dashboard(self, name: str, args: MonitoringArgs) -> None:
        """Every brand of the stack at a glance, as an Azure Monitor dashboard with Grafana."""
        AzureDashboard(
            f"{name}-platform-dashboard",
            AzureDashboardArgs(
                dashboard_name=f"recplat-{args.names.stack}-platform",
                definition=dashboard_json(
                    platform_dashboard(args.names.stack, args.dashboard_brands)
                ),
                resource_group_name=args.resource_group_name,
                location=args.location,
                tags=args.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
