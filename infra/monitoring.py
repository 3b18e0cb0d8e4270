"""Environment monitoring: logs, managed Prometheus, Grafana, the action group and platform alerts.

Two components, because the cluster sits between them: ``Monitoring`` exists
before the cluster (the cluster's Container Insights add-on needs the Log
Analytics workspace), and ``ClusterMonitoring`` attaches the cluster to managed
Prometheus and loads the platform alert rules once the cluster exists.
Alert rules are kept as Prometheus rule YAML (``infra/rules``) so ``promtool``
can test them; ``prometheus_rule_groups`` turns that YAML into Azure rule groups.

Container Insights signs in with its managed identity (``useAADAuth``), and then the
add-on alone collects nothing: like Microsoft's ARM template for that mode, a data
collection rule (the ``ContainerInsights`` extension into the Log Analytics
workspace) and its ``ContainerInsightsExtension`` association on the cluster are
created here. Whoever deploys gets Grafana Admin, so somebody can open Grafana.
The platform dashboard (every brand at a glance) is provisioned here too; each brand's own
dashboard comes with its BrandStack (``infra.dashboards``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi_azure_native import (
    alertsmanagement,
    dashboard,
    monitor,
    operationalinsights,
)

from infra import azure_roles
from infra.config import MonitoringConfig
from infra.dashboards.azure_dashboard import AzureDashboard, AzureDashboardArgs
from infra.dashboards.brand_dashboard import BrandDashboardArgs
from infra.dashboards.panels import dashboard_json
from infra.dashboards.platform_dashboard import platform_dashboard
from infra.environment_names import EnvironmentNames
from infra.prometheus_collection import (
    SETTINGS_CONFIGMAP,
    SETTINGS_NAMESPACE,
    keep_list_additions,
    settings_configmap_data,
)

PLATFORM_RULES = Path(__file__).parent / "rules" / "platform.rules.yaml"
_PROMETHEUS_STREAM = "Microsoft-PrometheusMetrics"
# Container Insights with managed identity auth (Microsoft's ARM template for useAADAuth).
CONTAINER_INSIGHTS_STREAM = "Microsoft-ContainerInsights-Group-Default"
CONTAINER_INSIGHTS_ASSOCIATION = "ContainerInsightsExtension"
# Prometheus severity label -> Azure alert severity (0 is the most severe).
_SEVERITY = {"critical": 0, "error": 1, "warning": 2, "info": 3}
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def iso_duration(duration: str) -> str:
    """A Prometheus duration (``5m``, ``1h30m``) as the ISO 8601 form Azure wants (``PT5M``)."""
    match = _DURATION.fullmatch(duration)
    if not duration or match is None:
        raise ValueError(f"unsupported Prometheus duration {duration!r}; use h, m and s units")
    hours, minutes, seconds = match.groups()
    return "PT" + "".join(
        f"{value}{unit}" for value, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if value
    )


def rule_groups_from_yaml(path: Path) -> list[dict[str, Any]]:
    """The ``groups`` of a Prometheus rule file, with a clear error if it has none."""
    document = yaml.safe_load(path.read_text())
    groups = (document or {}).get("groups")
    if not isinstance(groups, list) or not groups:
        raise ValueError(f"{path}: expected a Prometheus rule file with a non-empty 'groups' list")
    return groups


def azure_rule(
    rule: dict[str, Any], action_group_id: pulumi.Input[str]
) -> alertsmanagement.PrometheusRuleArgs:
    """One Prometheus alerting or recording rule in Azure's shape."""
    if "record" in rule:
        return alertsmanagement.PrometheusRuleArgs(
            record=rule["record"], expression=rule["expr"], labels=rule.get("labels"), enabled=True
        )
    labels = {str(key): str(value) for key, value in (rule.get("labels") or {}).items()}
    return alertsmanagement.PrometheusRuleArgs(
        alert=rule["alert"],
        expression=rule["expr"],
        for_=iso_duration(rule["for"]) if "for" in rule else None,
        severity=_SEVERITY.get(labels.get("severity", "warning"), 2),
        labels=labels,
        annotations=rule.get("annotations"),
        enabled=True,
        actions=[alertsmanagement.PrometheusRuleGroupActionArgs(action_group_id=action_group_id)],
        resolve_configuration=alertsmanagement.PrometheusRuleResolveConfigurationArgs(
            auto_resolved=True, time_to_resolve="PT10M"
        ),
    )


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
        child = pulumi.ResourceOptions(parent=self)
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
            opts=child,
        )
        workspace = monitor.AzureMonitorWorkspace(
            f"{name}-prometheus",
            azure_monitor_workspace_name=names.monitor_workspace,
            resource_group_name=rg,
            location=location,
            tags=tags,
            opts=child,
        )
        endpoint = monitor.DataCollectionEndpoint(
            f"{name}-dce",
            data_collection_endpoint_name=f"dce-recplat-{names.stack}",
            resource_group_name=rg,
            location=location,
            kind="Linux",
            tags=tags,
            opts=child,
        )
        rule = monitor.DataCollectionRule(
            f"{name}-dcr",
            data_collection_rule_name=f"dcr-recplat-{names.stack}-prometheus",
            resource_group_name=rg,
            location=location,
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
            tags=tags,
            opts=child,
        )
        container_insights = monitor.DataCollectionRule(
            f"{name}-container-insights-dcr",
            data_collection_rule_name=f"MSCI-{location}-{names.cluster}"[:64],
            resource_group_name=rg,
            location=location,
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
            tags=tags,
            opts=child,
        )
        grafana = dashboard.Grafana(
            f"{name}-grafana",
            workspace_name=names.grafana,
            resource_group_name=rg,
            location=location,
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
            tags=tags,
            opts=child,
        )
        grafana_principal = grafana.identity.apply(
            lambda identity: (identity.principal_id if identity else None) or ""
        )
        azure_roles.assign_role(
            f"{name}-grafana-reads-metrics",
            subscription_id=args.subscription_id,
            role=azure_roles.MONITORING_DATA_READER,
            principal_id=grafana_principal,
            principal_type="ServicePrincipal",
            scope=workspace.id,
            parent=self,
        )
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
        action_group = monitor.ActionGroup(
            f"{name}-action-group",
            action_group_name=f"ag-recplat-{names.stack}",
            group_short_name=f"recplat{names.stack}"[:12],
            resource_group_name=rg,
            location="global",
            enabled=True,
            email_receivers=[
                monitor.MicrosoftCommonEmailReceiverArgs(
                    name="platform-oncall",
                    email_address=args.config.alert_email,
                    use_common_alert_schema=True,
                )
            ],
            tags=tags,
            opts=child,
        )

        if args.dashboard_brands:
            AzureDashboard(
                f"{name}-platform-dashboard",
                AzureDashboardArgs(
                    dashboard_name=f"recplat-{names.stack}-platform",
                    definition=dashboard_json(
                        platform_dashboard(names.stack, args.dashboard_brands)
                    ),
                    resource_group_name=rg,
                    location=location,
                    tags=tags,
                ),
                opts=child,
            )

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


@dataclass(frozen=True)
class ClusterMonitoringArgs:
    """Inputs of ``ClusterMonitoring``."""

    monitoring: Monitoring
    cluster_id: pulumi.Input[str]
    cluster_name: str
    resource_group_name: pulumi.Input[str]
    location: str
    rules_file: Path
    tags: dict[str, str]
    provider: k8s.Provider | None = None
    """Where the metrics add-on's settings ConfigMap goes, when the rules need more metrics."""


class ClusterMonitoring(pulumi.ComponentResource):
    """Managed Prometheus collection for the cluster and the platform alert rule groups."""

    def __init__(
        self, name: str, args: ClusterMonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:monitoring:ClusterMonitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        monitoring = args.monitoring

        # The agent finds its endpoint through this exact association name.
        monitor.DataCollectionRuleAssociation(
            f"{name}-dce-association",
            association_name="configurationAccessEndpoint",
            resource_uri=args.cluster_id,
            data_collection_endpoint_id=monitoring.data_collection_endpoint_id,
            opts=child,
        )
        monitor.DataCollectionRuleAssociation(
            f"{name}-dcr-association",
            association_name=f"MSProm-{args.location}-{args.cluster_name}"[:64],
            resource_uri=args.cluster_id,
            data_collection_rule_id=monitoring.data_collection_rule_id,
            opts=child,
        )
        monitor.DataCollectionRuleAssociation(
            f"{name}-container-insights-association",
            association_name=CONTAINER_INSIGHTS_ASSOCIATION,
            resource_uri=args.cluster_id,
            data_collection_rule_id=monitoring.container_insights_rule_id,
            description="Container Insights for this cluster; removing it stops log collection",
            opts=child,
        )
        groups = rule_groups_from_yaml(args.rules_file)
        # The minimal ingestion profile drops every metric off its keep lists; a rule on one of
        # them would never fire, so the settings ConfigMap keeps what the rules use.
        additions = keep_list_additions(rule["expr"] for group in groups for rule in group["rules"])
        if additions:
            if args.provider is None:
                raise ValueError(
                    f"{args.rules_file}: rules use {additions}, which managed Prometheus drops; "
                    "pass the cluster's provider so the metrics settings ConfigMap keeps them"
                )
            k8s.core.v1.ConfigMap(
                f"{name}-metrics-settings",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=SETTINGS_CONFIGMAP, namespace=SETTINGS_NAMESPACE
                ),
                data=settings_configmap_data(additions),
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
            )
        for group in groups:
            alertsmanagement.PrometheusRuleGroup(
                f"{name}-rules-{group['name']}",
                rule_group_name=f"{group['name']}-{args.cluster_name}",
                resource_group_name=args.resource_group_name,
                location=args.location,
                cluster_name=args.cluster_name,
                description=f"recplat platform rules: {group['name']}",
                enabled=True,
                interval=iso_duration(group.get("interval", "1m")),
                scopes=[monitoring.monitor_workspace_id, args.cluster_id],
                rules=[azure_rule(rule, monitoring.action_group_id) for rule in group["rules"]],
                tags=args.tags,
                opts=child,
            )
        self.register_outputs({})
