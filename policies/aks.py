"""Policies for the AKS cluster (``azure-native:containerservice``): identity, network, add-ons."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, Severity

from policies.context import as_list, as_mapping, is_production, is_true, lookup, same_text
from policies.rule import Violations, resource_policy, setting, show

MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"

_NETWORK_POLICIES = ("azure", "calico", "cilium")
_PAID_TIERS = ("Standard", "Premium")


@resource_policy(
    name="aks-entra-azure-rbac",
    description="AKS uses Kubernetes RBAC with managed Entra ID integration and Azure RBAC.",
    resource_types=[MANAGED_CLUSTER],
    severity=Severity.HIGH,
    benchmark="CKV_AZURE_5; CIS AKS 5.5.1",
)
def aks_entra_azure_rbac(args: ResourceValidationArgs, report: Violations) -> None:
    props = args.props
    for path in ("enableRBAC", "aadProfile.managed", "aadProfile.enableAzureRBAC"):
        value = lookup(props, path)
        if not is_true(value):
            report(f"{setting(path, value)}; set it to true")


@resource_policy(
    name="aks-local-accounts-disabled",
    description="AKS local (certificate) accounts are off, so every login goes through Entra ID.",
    resource_types=[MANAGED_CLUSTER],
    severity=Severity.HIGH,
    benchmark="CKV_AZURE_141",
)
def aks_local_accounts_disabled(args: ResourceValidationArgs, report: Violations) -> None:
    value = lookup(args.props, "disableLocalAccounts")
    if not is_true(value):
        report(f"{setting('disableLocalAccounts', value)}; set it to true")


@resource_policy(
    name="aks-workload-identity",
    description="AKS has the OIDC issuer and workload identity enabled, so pods use no secrets.",
    resource_types=[MANAGED_CLUSTER],
    severity=Severity.HIGH,
)
def aks_workload_identity(args: ResourceValidationArgs, report: Violations) -> None:
    for path in ("oidcIssuerProfile.enabled", "securityProfile.workloadIdentity.enabled"):
        value = lookup(args.props, path)
        if not is_true(value):
            report(f"{setting(path, value)}; set it to true")


@resource_policy(
    name="aks-network-policy",
    description="AKS enforces Kubernetes NetworkPolicies (azure, calico or cilium).",
    resource_types=[MANAGED_CLUSTER],
    severity=Severity.HIGH,
    benchmark="CKV_AZURE_7; CIS AKS 5.4.4",
)
def aks_network_policy(args: ResourceValidationArgs, report: Violations) -> None:
    value = lookup(args.props, "networkProfile.networkPolicy")
    if not any(same_text(value, choice) for choice in _NETWORK_POLICIES):
        report(
            f"{setting('networkProfile.networkPolicy', value)}; set it to one of "
            + ", ".join(_NETWORK_POLICIES)
        )


@resource_policy(
    name="aks-no-node-public-ip",
    description="AKS nodes get no public IP addresses.",
    resource_types=[MANAGED_CLUSTER, AGENT_POOL],
    severity=Severity.HIGH,
    benchmark="CIS AKS 5.4.3",
)
def aks_no_node_public_ip(args: ResourceValidationArgs, report: Violations) -> None:
    if args.resource_type == AGENT_POOL:
        if is_true(lookup(args.props, "enableNodePublicIP")):
            report("sets enableNodePublicIP=true; set it to false")
        return
    for index, pool in enumerate(as_list(args.props.get("agentPoolProfiles"))):
        if is_true(lookup(as_mapping(pool), "enableNodePublicIP")):
            report(f"sets agentPoolProfiles[{index}].enableNodePublicIP=true; set it to false")


def _addon(args: ResourceValidationArgs, key: str) -> tuple[bool, dict[str, object]]:
    profile = as_mapping(as_mapping(args.props.get("addonProfiles")).get(key))
    return is_true(profile.get("enabled")), dict(as_mapping(profile.get("config")))


@resource_policy(
    name="aks-azure-policy-addon",
    description="AKS runs the Azure Policy add-on (Gatekeeper) for in-cluster guardrails.",
    resource_types=[MANAGED_CLUSTER],
    severity=Severity.MEDIUM,
    benchmark="CKV_AZURE_116",
)
def aks_azure_policy_addon(args: ResourceValidationArgs, report: Violations) -> None:
    enabled, _ = _addon(args, "azurepolicy")
    if not enabled:
        report(
            "does not enable addonProfiles.azurepolicy; set addonProfiles.azurepolicy.enabled=true"
        )


@resource_policy(
    name="aks-container-insights",
    description="AKS sends container logs to Log Analytics (Container Insights, omsagent add-on).",
    resource_types=[MANAGED_CLUSTER],
    severity=Severity.MEDIUM,
    benchmark="CKV_AZURE_4",
)
def aks_container_insights(args: ResourceValidationArgs, report: Violations) -> None:
    enabled, config = _addon(args, "omsagent")
    if not enabled:
        report("does not enable addonProfiles.omsagent; set addonProfiles.omsagent.enabled=true")
    elif not config.get("logAnalyticsWorkspaceResourceID"):
        report(
            "enables addonProfiles.omsagent without a workspace; set "
            "addonProfiles.omsagent.config.logAnalyticsWorkspaceResourceID"
        )


@resource_policy(
    name="aks-managed-prometheus",
    description="AKS sends metrics to Azure Monitor managed Prometheus.",
    resource_types=[MANAGED_CLUSTER],
    severity=Severity.MEDIUM,
)
def aks_managed_prometheus(args: ResourceValidationArgs, report: Violations) -> None:
    value = lookup(args.props, "azureMonitorProfile.metrics.enabled")
    if not is_true(value):
        report(f"{setting('azureMonitorProfile.metrics.enabled', value)}; set it to true")


@resource_policy(
    name="aks-keyvault-csi-rotation",
    description="AKS runs the Key Vault Secrets Store CSI driver with secret rotation.",
    resource_types=[MANAGED_CLUSTER],
    severity=Severity.MEDIUM,
    benchmark="CKV_AZURE_172",
)
def aks_keyvault_csi_rotation(args: ResourceValidationArgs, report: Violations) -> None:
    enabled, config = _addon(args, "azureKeyvaultSecretsProvider")
    if not enabled:
        report(
            "does not enable addonProfiles.azureKeyvaultSecretsProvider; "
            "set addonProfiles.azureKeyvaultSecretsProvider.enabled=true"
        )
    elif str(config.get("enableSecretRotation", "")).lower() != "true":
        report(
            "sets addonProfiles.azureKeyvaultSecretsProvider.config.enableSecretRotation="
            f'{show(config.get("enableSecretRotation"))}; set it to "true"'
        )


@resource_policy(
    name="aks-no-dashboard",
    description="AKS does not run the Kubernetes dashboard add-on.",
    resource_types=[MANAGED_CLUSTER],
    severity=Severity.HIGH,
    benchmark="CKV_AZURE_8",
)
def aks_no_dashboard(args: ResourceValidationArgs, report: Violations) -> None:
    enabled, _ = _addon(args, "kubeDashboard")
    if enabled:
        report("enables addonProfiles.kubeDashboard; remove it or set enabled=false")


@resource_policy(
    name="aks-upgrade-channel",
    description="AKS has an automatic upgrade channel so security patches land without a ticket.",
    resource_types=[MANAGED_CLUSTER],
    severity=Severity.MEDIUM,
    benchmark="CKV_AZURE_171",
)
def aks_upgrade_channel(args: ResourceValidationArgs, report: Violations) -> None:
    value = lookup(args.props, "autoUpgradeProfile.upgradeChannel")
    if not isinstance(value, str) or same_text(value, "none"):
        report(
            f"{setting('autoUpgradeProfile.upgradeChannel', value)}; "
            "set it to patch, stable, rapid or node-image"
        )


@resource_policy(
    name="aks-standard-tier-prod",
    description="A production AKS cluster uses the Standard (or Premium) tier with an uptime SLA.",
    resource_types=[MANAGED_CLUSTER],
    severity=Severity.MEDIUM,
    benchmark="CKV_AZURE_170",
)
def aks_standard_tier_prod(args: ResourceValidationArgs, report: Violations) -> None:
    if not is_production(args.get_config(), args.props):
        return
    value = lookup(args.props, "sku.tier")
    if not any(same_text(value, tier) for tier in _PAID_TIERS):
        report(f"{setting('sku.tier', value)} in prod; set it to Standard")


@resource_policy(
    name="aks-api-server-restricted",
    description="The AKS API server is private or reachable only from authorized IP ranges.",
    resource_types=[MANAGED_CLUSTER],
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    benchmark="CKV_AZURE_6; CKV_AZURE_115; CIS AKS 5.4.2",
)
def aks_api_server_restricted(args: ResourceValidationArgs, report: Violations) -> None:
    access = as_mapping(args.props.get("apiServerAccessProfile"))
    if is_true(access.get("enablePrivateCluster")):
        return
    ranges = [str(cidr) for cidr in as_list(access.get("authorizedIPRanges"))]
    if not ranges:
        report(
            "exposes the API server to the internet; set "
            "apiServerAccessProfile.enablePrivateCluster=true or authorizedIPRanges"
        )
    elif "0.0.0.0/0" in ranges:
        report(
            "authorizes 0.0.0.0/0 on the API server; list only the CIDRs of CI and operators "
            "in apiServerAccessProfile.authorizedIPRanges"
        )


# The Kubernetes minors AKS supported when recplat was last reviewed (infra/config.py keeps the
# same list for stack validation; a policy pack must not import the program it polices).
SUPPORTED_KUBERNETES_MINORS = ("1.34", "1.35", "1.36")


@resource_policy(
    name="aks-kubernetes-version-supported",
    description="AKS runs a Kubernetes minor version that AKS still supports.",
    resource_types=[MANAGED_CLUSTER],
    severity=Severity.HIGH,
)
def aks_kubernetes_version_supported(args: ResourceValidationArgs, report: Violations) -> None:
    value = args.props.get("kubernetesVersion")
    minor = ".".join(str(value).split(".")[:2]) if value is not None else None
    if minor not in SUPPORTED_KUBERNETES_MINORS:
        report(
            f"{setting('kubernetesVersion', value)}, outside the supported "
            f"{', '.join(SUPPORTED_KUBERNETES_MINORS)}; choose one that "
            "`az aks get-versions --location <region> -o table` lists"
        )
