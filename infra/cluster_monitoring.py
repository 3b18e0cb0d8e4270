"""The cluster's side of monitoring: managed Prometheus and Container Insights attached to the
cluster, and the platform alert rules.

``ClusterMonitoring`` comes after the cluster (``infra.monitoring.Monitoring``, which the
cluster's Container Insights add-on needs, comes before it). Alert rules are kept as
Prometheus rule YAML (``infra/rules``) so ``promtool`` can test them; ``azure_rule`` turns
each rule of that YAML into Azure's shape, one ``PrometheusRuleGroup`` per YAML group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi_azure_native import alertsmanagement, monitor

from infra.monitoring import Monitoring
from infra.prometheus_collection import (
    SETTINGS_CONFIGMAP,
    SETTINGS_NAMESPACE,
    keep_list_additions,
    settings_configmap_data,
)

PLATFORM_RULES = Path(__file__).parent / "rules" / "platform.rules.yaml"
# The Container Insights agent finds its rule through this association name (Microsoft's ARM
# template for managed identity auth).
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
        self._associate_collection(name, args)
        groups = rule_groups_from_yaml(args.rules_file)
        self._keep_rule_metrics(name, args, groups)
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
                scopes=[args.monitoring.monitor_workspace_id, args.cluster_id],
                rules=[
                    azure_rule(rule, args.monitoring.action_group_id) for rule in group["rules"]
                ],
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({})

    def _associate_collection(self, name: str, args: ClusterMonitoringArgs) -> None:
        """Attach the cluster to the Prometheus endpoint and rule and to Container Insights."""
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

    def _keep_rule_metrics(
        self, name: str, args: ClusterMonitoringArgs, groups: list[dict[str, Any]]
    ) -> None:
        """The minimal ingestion profile drops every metric off its keep lists; a rule on one
        of them would never fire, so the settings ConfigMap keeps what the rules use."""
        additions = keep_list_additions(rule["expr"] for group in groups for rule in group["rules"])
        if not additions:
            return
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
