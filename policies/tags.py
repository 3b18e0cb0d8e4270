"""Policies for ownership metadata: Azure tags on taggable resources, brand namespace labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from policies.context import as_mapping, is_brand_resource, lookup, stack_name
from policies.rule import Violations, resource_policy

# Azure resource types recplat creates that accept ``tags`` (checked against the
# SDK by tests/policies/test_tags_catalog.py). Sub-resources such as subnets,
# containers and role assignments take no tags.
TAGGABLE_TYPES = frozenset(
    f"azure-native:{token}"
    for token in (
        "resources:ResourceGroup",
        "network:VirtualNetwork",
        "network:NetworkSecurityGroup",
        "network:PrivateEndpoint",
        "network:PublicIPAddress",
        "network:NatGateway",
        "privatedns:PrivateZone",
        "privatedns:VirtualNetworkLink",
        "containerservice:ManagedCluster",
        "containerservice:AgentPool",
        "containerregistry:Registry",
        "storage:StorageAccount",
        "keyvault:Vault",
        "keyvault:Secret",
        "dbforpostgresql:Server",
        "managedidentity:UserAssignedIdentity",
        "operationalinsights:Workspace",
        "applicationinsights:Component",
        "monitor:AzureMonitorWorkspace",
        "monitor:DataCollectionEndpoint",
        "monitor:DataCollectionRule",
        "monitor:ActionGroup",
        "monitor:ScheduledQueryRule",
        "monitor:MetricAlert",
        "alertsmanagement:PrometheusRuleGroup",
        "dashboard:Grafana",
        "dashboard:Dashboard",
    )
)
NAMESPACE = "kubernetes:core/v1:Namespace"

PLATFORM_TAGS = {"managed-by": "pulumi", "project": "recplat"}
BRAND_KEYS = ("brand", "owner", "cost-center")
BRAND_NAMESPACE_PREFIX = "brand-"


def _tags(args: ResourceValidationArgs) -> Mapping[str, Any]:
    return as_mapping(args.props.get("tags"))


@resource_policy(
    name="tags-platform",
    description="Taggable Azure resources carry environment, managed-by=pulumi, project=recplat.",
    resource_types=TAGGABLE_TYPES,
    severity=Severity.LOW,
)
def tags_platform(args: ResourceValidationArgs, report: Violations) -> None:
    tags = _tags(args)
    stack = stack_name(args.get_config(), tags)
    expected = {"environment": stack, **PLATFORM_TAGS}
    missing = [key for key in expected if key not in tags]
    if missing:
        wanted = ", ".join(f"{key}={value}" for key, value in expected.items())
        report(f"is missing tags {', '.join(missing)}; add {wanted}")
        return
    wrong = [f"{key}={tags[key]}" for key, value in expected.items() if tags[key] != value]
    if wrong:
        report(
            f"has tags {', '.join(wrong)} in stack {stack}; set "
            + ", ".join(f"{key}={value}" for key, value in expected.items())
        )


@resource_policy(
    name="tags-brand",
    description="Brand Azure resources carry the brand, owner and cost-center tags.",
    resource_types=TAGGABLE_TYPES,
    severity=Severity.LOW,
)
def tags_brand(args: ResourceValidationArgs, report: Violations) -> None:
    if not is_brand_resource(args.urn, args.props):
        return
    tags = _tags(args)
    missing = [key for key in BRAND_KEYS if not tags.get(key)]
    if missing:
        report(
            f"is a brand resource missing tags {', '.join(missing)}; "
            "add brand, owner and cost-center from the brand file"
        )


def _has_label(labels: Mapping[str, Any], key: str) -> bool:
    # Accept the bare key and any prefixed form (recplat.io/brand): both are conventions.
    return any(name == key or name.endswith("/" + key) for name in labels)


@resource_policy(
    name="k8s-brand-namespace-labels",
    description="Brand namespaces carry brand, owner and cost-center labels for cost reports.",
    resource_types=[NAMESPACE],
    severity=Severity.LOW,
)
def k8s_brand_namespace_labels(args: ResourceValidationArgs, report: Violations) -> None:
    name = lookup(args.props, "metadata.name")
    if not (isinstance(name, str) and name.startswith(BRAND_NAMESPACE_PREFIX)):
        return
    labels = as_mapping(lookup(args.props, "metadata.labels"))
    missing = [key for key in BRAND_KEYS if not _has_label(labels, key)]
    if missing:
        report(
            f"is a brand namespace missing labels {', '.join(missing)}; "
            "add brand, owner and cost-center labels from the brand file"
        )
