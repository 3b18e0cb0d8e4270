"""The Azure resource providers a subscription must have registered before the first ``pulumi up``.

ARM refuses a resource whose namespace the subscription has not registered
(``MissingSubscriptionRegistration``), and pulumi-azure-native does not register
namespaces itself (pulumi/pulumi-azure-native#3479). A new subscription has only a few
registered, so the deploy workflow and the README's first-deploy sequence register these
first, per subscription (``az provider register --wait``; a no-op once registered):

    uv run python -m infra.resource_providers   # one namespace per line

The namespaces come from the resource types the registry and environment programs declare
(``namespace_of``; ``tests/infra/test_env_resource_providers.py`` checks every type of every
plan maps), plus those that AKS add-ons create resources in on the cluster's behalf.
"""

from __future__ import annotations

# azure-native module -> the ARM namespace of its resources.
MODULE_NAMESPACES = {
    "alertsmanagement": "Microsoft.AlertsManagement",
    "authorization": "Microsoft.Authorization",
    "containerregistry": "Microsoft.ContainerRegistry",
    "containerservice": "Microsoft.ContainerService",
    "dashboard": "Microsoft.Dashboard",
    "dbforpostgresql": "Microsoft.DBforPostgreSQL",
    "keyvault": "Microsoft.KeyVault",
    "managedidentity": "Microsoft.ManagedIdentity",
    # Data collection rules and endpoints, action groups: microsoft.insights.
    "monitor": "Microsoft.Insights",
    "network": "Microsoft.Network",
    "operationalinsights": "Microsoft.OperationalInsights",
    "privatedns": "Microsoft.Network",
    "resources": "Microsoft.Resources",
    "storage": "Microsoft.Storage",
}
# Types whose namespace is not their module's.
TYPE_NAMESPACES = {
    "azure-native:monitor:AzureMonitorWorkspace": "Microsoft.Monitor",
}
# Namespaces AKS and its add-ons create resources in for the cluster (AKS documentation for
# each add-on lists its registration as a prerequisite).
ADD_ON_NAMESPACES = {
    "Microsoft.Compute": "the node pools' virtual machine scale sets",
    "Microsoft.PolicyInsights": "the azurepolicy add-on",
    "Microsoft.OperationsManagement": "Container Insights (omsagent add-on)",
    "Microsoft.Monitor": "managed Prometheus (azureMonitorProfile.metrics)",
    "Microsoft.AlertsManagement": "managed Prometheus' recording and alert rule groups",
    "Microsoft.Dashboard": "Managed Grafana and its dashboards",
    "Microsoft.Insights": "the metrics data collection rule and its association",
}
# Every subscription has these; registering them is not needed.
REGISTERED_BY_DEFAULT = frozenset({"Microsoft.Authorization", "Microsoft.Resources"})


def namespace_of(resource_type: str) -> str:
    """The ARM namespace of pulumi-azure-native type ``resource_type``."""
    if resource_type in TYPE_NAMESPACES:
        return TYPE_NAMESPACES[resource_type]
    package, _, rest = resource_type.partition(":")
    module = rest.partition(":")[0]
    if package != "azure-native" or module not in MODULE_NAMESPACES:
        raise KeyError(
            f"{resource_type}: no ARM namespace known for it; add its module to "
            "MODULE_NAMESPACES (or the type to TYPE_NAMESPACES) in infra/resource_providers.py"
        )
    return MODULE_NAMESPACES[module]


def namespaces_to_register() -> list[str]:
    """Every namespace of a known module or type, and the add-ons', sorted, without those
    every subscription already has."""
    known = {*MODULE_NAMESPACES.values(), *TYPE_NAMESPACES.values(), *ADD_ON_NAMESPACES}
    return sorted(known - REGISTERED_BY_DEFAULT)


def main() -> None:
    print("\n".join(namespaces_to_register()))


if __name__ == "__main__":
    main()
