"""Every rule: the known-good stack passes it, and turning one insecure option on is caught by it.

Each case starts from the compliant stack, flips one input of one resource and
expects exactly one violation, from the matching policy, with the exact message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from policies.catalog import ALL_POLICIES
from policies.offline import evaluate_stack
from tests.policies.known_good import DELETE, known_good_stack, resource, set_path

pytestmark = pytest.mark.fast

STRICT = {"all": "mandatory"}
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
DEPLOY_SC = "spec.template.spec.containers.0.securityContext"
CRON_SPEC = "spec.jobTemplate.spec.template.spec"


@dataclass(frozen=True)
class Insecure:
    """One insecure option: where it is turned on and what the policy must say."""

    policy: str
    resource: str
    changes: tuple[tuple[str, Any], ...]
    problem: str
    stack: str = "prod"

    @property
    def id(self) -> str:
        return f"{self.policy}:{self.problem[:40]}"


def case(policy: str, name: str, problem: str, *changes: tuple[str, Any], stack: str = "prod"):
    return Insecure(policy, name, changes, problem, stack)


CASES = [
    # AKS
    case(
        "aks-entra-azure-rbac",
        "aks",
        "sets aadProfile.enableAzureRBAC=false; set it to true",
        ("aadProfile.enableAzureRBAC", False),
    ),
    case(
        "aks-entra-azure-rbac",
        "aks",
        "leaves enableRBAC unset; set it to true",
        ("enableRBAC", DELETE),
    ),
    case(
        "aks-local-accounts-disabled",
        "aks",
        "sets disableLocalAccounts=false; set it to true",
        ("disableLocalAccounts", False),
    ),
    case(
        "aks-workload-identity",
        "aks",
        "sets oidcIssuerProfile.enabled=false; set it to true",
        ("oidcIssuerProfile.enabled", False),
    ),
    case(
        "aks-workload-identity",
        "aks",
        "leaves securityProfile.workloadIdentity.enabled unset; set it to true",
        ("securityProfile", DELETE),
    ),
    case(
        "aks-network-policy",
        "aks",
        "sets networkProfile.networkPolicy=none; set it to one of azure, calico, cilium",
        ("networkProfile.networkPolicy", "none"),
    ),
    case(
        "aks-no-node-public-ip",
        "aks",
        "sets agentPoolProfiles[0].enableNodePublicIP=true; set it to false",
        ("agentPoolProfiles.0.enableNodePublicIP", True),
    ),
    case(
        "aks-no-node-public-ip",
        "user",
        "sets enableNodePublicIP=true; set it to false",
        ("enableNodePublicIP", True),
    ),
    case(
        "aks-azure-policy-addon",
        "aks",
        "does not enable addonProfiles.azurepolicy; set addonProfiles.azurepolicy.enabled=true",
        ("addonProfiles.azurepolicy.enabled", False),
    ),
    case(
        "aks-container-insights",
        "aks",
        "does not enable addonProfiles.omsagent; set addonProfiles.omsagent.enabled=true",
        ("addonProfiles.omsagent", DELETE),
    ),
    case(
        "aks-container-insights",
        "aks",
        "enables addonProfiles.omsagent without a workspace; set "
        "addonProfiles.omsagent.config.logAnalyticsWorkspaceResourceID",
        ("addonProfiles.omsagent.config", DELETE),
    ),
    case(
        "aks-managed-prometheus",
        "aks",
        "leaves azureMonitorProfile.metrics.enabled unset; set it to true",
        ("azureMonitorProfile", DELETE),
    ),
    case(
        "aks-keyvault-csi-rotation",
        "aks",
        "sets addonProfiles.azureKeyvaultSecretsProvider.config.enableSecretRotation=false; "
        'set it to "true"',
        ("addonProfiles.azureKeyvaultSecretsProvider.config.enableSecretRotation", "false"),
    ),
    case(
        "aks-keyvault-csi-rotation",
        "aks",
        "does not enable addonProfiles.azureKeyvaultSecretsProvider; "
        "set addonProfiles.azureKeyvaultSecretsProvider.enabled=true",
        ("addonProfiles.azureKeyvaultSecretsProvider", DELETE),
    ),
    case(
        "aks-no-dashboard",
        "aks",
        "enables addonProfiles.kubeDashboard; remove it or set enabled=false",
        ("addonProfiles.kubeDashboard", {"enabled": True}),
    ),
    case(
        "aks-kubernetes-version-supported",
        "aks",
        "sets kubernetesVersion=1.33, outside the supported 1.34, 1.35, 1.36; choose one that "
        "`az aks get-versions --location <region> -o table` lists",
        ("kubernetesVersion", "1.33"),
    ),
    case(
        "aks-upgrade-channel",
        "aks",
        "sets autoUpgradeProfile.upgradeChannel=none; set it to patch, stable, rapid or node-image",
        ("autoUpgradeProfile.upgradeChannel", "none"),
    ),
    case(
        "aks-standard-tier-prod",
        "aks",
        "sets sku.tier=Free in prod; set it to Standard",
        ("sku.tier", "Free"),
    ),
    case(
        "aks-api-server-restricted",
        "aks",
        "exposes the API server to the internet; set "
        "apiServerAccessProfile.enablePrivateCluster=true or authorizedIPRanges",
        ("apiServerAccessProfile", DELETE),
    ),
    case(
        "aks-api-server-restricted",
        "aks",
        "authorizes 0.0.0.0/0 on the API server; list only the CIDRs of CI and operators "
        "in apiServerAccessProfile.authorizedIPRanges",
        ("apiServerAccessProfile.authorizedIPRanges", ["0.0.0.0/0"]),
    ),
    # Storage
    case(
        "storage-tls12",
        "lake",
        "sets minimumTlsVersion=TLS1_0; set it to TLS1_2",
        ("minimumTlsVersion", "TLS1_0"),
    ),
    case(
        "storage-https-only",
        "lake",
        "sets enableHttpsTrafficOnly=false; set it to true",
        ("enableHttpsTrafficOnly", False),
    ),
    case(
        "storage-no-public-blob",
        "lake",
        "sets allowBlobPublicAccess=true; set it to false",
        ("allowBlobPublicAccess", True),
    ),
    case(
        "storage-shared-key-disabled",
        "lake",
        "leaves allowSharedKeyAccess unset; set it to false",
        ("allowSharedKeyAccess", DELETE),
    ),
    case(
        "storage-network-deny-default",
        "lake",
        "sets networkRuleSet.defaultAction=Allow; set it to Deny",
        ("networkRuleSet.defaultAction", "Allow"),
    ),
    case(
        "storage-public-network-disabled-prod",
        "lake",
        "sets publicNetworkAccess=Enabled in prod; set it to Disabled",
        ("publicNetworkAccess", "Enabled"),
    ),
    case(
        "storage-hns-enabled",
        "lake",
        "sets isHnsEnabled=false; set it to true (the lake is ADLS Gen2)",
        ("isHnsEnabled", False),
    ),
    case(
        "storage-blob-soft-delete",
        "lake-blob",
        "sets deleteRetentionPolicy.enabled=false; set it to true",
        ("deleteRetentionPolicy.enabled", False),
    ),
    case(
        "storage-blob-soft-delete",
        "lake-blob",
        "sets containerDeleteRetentionPolicy.days=1; keep deleted data at least 7 days",
        ("containerDeleteRetentionPolicy.days", 1),
    ),
    case(
        "storage-container-private",
        "mlflow",
        "sets publicAccess=Blob; set it to None",
        ("publicAccess", "Blob"),
    ),
    # Key Vault
    case(
        "keyvault-rbac-authorization",
        "vault",
        "sets properties.enableRbacAuthorization=false; set it to true",
        ("properties.enableRbacAuthorization", False),
    ),
    case(
        "keyvault-soft-delete",
        "vault",
        "sets properties.enableSoftDelete=false; remove it or set it to true",
        ("properties.enableSoftDelete", False),
    ),
    case(
        "keyvault-purge-protection",
        "vault",
        "leaves properties.enablePurgeProtection unset; set it to true",
        ("properties.enablePurgeProtection", DELETE),
    ),
    case(
        "keyvault-public-network-disabled-prod",
        "vault",
        "sets properties.publicNetworkAccess=Enabled in prod; set it to Disabled",
        ("properties.publicNetworkAccess", "Enabled"),
    ),
    # PostgreSQL
    case(
        "postgres-tls-required",
        "log-connections",
        "sets value=off for require_secure_transport; remove the Configuration "
        "(the server requires TLS by default)",
        ("configurationName", "require_secure_transport"),
        ("value", "off"),
    ),
    case(
        "postgres-no-open-firewall",
        "office",
        "allows 0.0.0.0-255.255.255.255; use private access (a delegated subnet) "
        "or a rule for the exact client range",
        ("startIpAddress", "0.0.0.0"),  # noqa: S104 - the forbidden range
        ("endIpAddress", "255.255.255.255"),
    ),
    case(
        "postgres-no-open-firewall",
        "office",
        "allows 0.0.0.0-0.0.0.0 (every Azure service of every tenant); use private access "
        "(a delegated subnet) or a rule for the exact client range",
        ("startIpAddress", "0.0.0.0"),  # noqa: S104 - the forbidden "allow Azure services" rule
        ("endIpAddress", "0.0.0.0"),  # noqa: S104
    ),
    case(
        "postgres-private-access-prod",
        "mlflow-db",
        "sets network.publicNetworkAccess=Enabled in prod; set it to Disabled",
        ("network.publicNetworkAccess", "Enabled"),
    ),
    case(
        "postgres-private-access-prod",
        "mlflow-db",
        "leaves network.delegatedSubnetResourceId unset in prod; "
        "place the server in the delegated PostgreSQL subnet",
        ("network.delegatedSubnetResourceId", DELETE),
    ),
    case(
        "postgres-entra-auth",
        "mlflow-db",
        "sets authConfig.activeDirectoryAuth=Disabled; set it to Enabled",
        ("authConfig.activeDirectoryAuth", "Disabled"),
    ),
    case(
        "postgres-ha-prod",
        "mlflow-db",
        "sets highAvailability.mode=Disabled in prod; set it to ZoneRedundant",
        ("highAvailability.mode", "Disabled"),
    ),
    case(
        "postgres-geo-backup-prod",
        "mlflow-db",
        "sets backup.geoRedundantBackup=Disabled in prod; set it to Enabled",
        ("backup.geoRedundantBackup", "Disabled"),
    ),
    # Identity
    case(
        "role-assignment-principal-type",
        "kubelet-acr-pull",
        "leaves principalType unset; set it to ServicePrincipal for managed identities",
        ("principalType", DELETE),
    ),
    case(
        "role-assignment-no-privileged-role",
        "kubelet-acr-pull",
        "grants Owner to a workload identity; grant a data-plane role such as "
        "Storage Blob Data Contributor or Key Vault Secrets User on the narrowest scope",
        ("roleDefinitionId", f"/providers/Microsoft.Authorization/roleDefinitions/{OWNER}"),
    ),
    case(
        "role-assignment-brand-scope",
        "acme-lake",
        "scopes a brand role assignment to /subscriptions/00000000-0000-0000-0000-000000000000"
        "/resourceGroups/recplat-prod/providers/Microsoft.Storage/storageAccounts/recplatlake1a2b;"
        " scope it to the brand's container (.../blobServices/default/containers/<brand>) or its "
        "Key Vault secrets (.../vaults/<vault>/secrets/<name>)",
        (
            "scope",
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
            "recplat-prod/providers/Microsoft.Storage/storageAccounts/recplatlake1a2b",
        ),
    ),
    case(
        "acr-no-admin-or-anonymous",
        "acr",
        "sets adminUserEnabled=true; set it to false and grant AcrPull to the kubelet identity",
        ("adminUserEnabled", True),
    ),
    # Tags and labels
    case(
        "tags-platform",
        "vault",
        "is missing tags managed-by; add environment=prod, managed-by=pulumi, project=recplat",
        ("tags.managed-by", DELETE),
    ),
    case(
        "tags-platform",
        "aks",
        "has tags environment=dev in stack prod; set environment=prod, managed-by=pulumi, "
        "project=recplat",
        ("tags.environment", "dev"),
    ),
    case(
        "tags-brand",
        "acme-identity",
        "is a brand resource missing tags cost-center; add brand, owner and cost-center "
        "from the brand file",
        ("tags.cost-center", DELETE),
    ),
    case(
        "k8s-brand-namespace-labels",
        "acme-namespace",
        "is a brand namespace missing labels owner; add brand, owner and cost-center labels "
        "from the brand file",
        ("metadata.labels.recplat/owner", DELETE),
    ),
    # Workloads
    case(
        "k8s-run-as-non-root",
        "acme-ranking",
        "container ranking-service may run as root; set securityContext.runAsNonRoot=true",
        ("spec.template.spec.securityContext.runAsNonRoot", DELETE),
        (f"{DEPLOY_SC}.runAsNonRoot", DELETE),
    ),
    case(
        "k8s-run-as-non-root",
        "acme-training",
        "container ranking-training sets runAsUser=0; use a non-zero UID such as 10001",
        (f"{CRON_SPEC}.containers.0.securityContext.runAsUser", 0),
    ),
    case(
        "k8s-no-privilege-escalation",
        "acme-ranking",
        "container ranking-service sets securityContext.allowPrivilegeEscalation=true; "
        "set it to false",
        (f"{DEPLOY_SC}.allowPrivilegeEscalation", True),
    ),
    case(
        "k8s-no-privilege-escalation",
        "acme-backfill",
        "container ranking-training sets securityContext.privileged=true; set it to false",
        ("spec.template.spec.containers.0.securityContext.privileged", True),
    ),
    case(
        "k8s-drop-all-capabilities",
        "acme-ranking",
        "container ranking-service does not drop ALL capabilities; set capabilities.drop=[ALL]",
        (f"{DEPLOY_SC}.capabilities.drop", ["NET_RAW"]),
    ),
    case(
        "k8s-drop-all-capabilities",
        "acme-training",
        "container ranking-training adds capabilities SYS_ADMIN; remove them",
        (f"{CRON_SPEC}.containers.0.securityContext.capabilities.add", ["SYS_ADMIN"]),
    ),
    case(
        "k8s-read-only-root-fs",
        "acme-ranking",
        "container ranking-service sets securityContext.readOnlyRootFilesystem=false; "
        "set it to true",
        (f"{DEPLOY_SC}.readOnlyRootFilesystem", False),
    ),
    case(
        "k8s-seccomp-runtime-default",
        "acme-backfill",
        "container ranking-training sets seccompProfile.type=Unconfined; "
        "set securityContext.seccompProfile.type=RuntimeDefault on the pod",
        ("spec.template.spec.securityContext.seccompProfile.type", "Unconfined"),
    ),
    case(
        "k8s-resources",
        "acme-ranking",
        "container ranking-service has no resources.limits.cpu, resources.limits.memory; set them",
        ("spec.template.spec.containers.0.resources.limits", DELETE),
    ),
    case(
        "k8s-deployment-probes",
        "acme-ranking",
        "container ranking-service has no livenessProbe; add them",
        ("spec.template.spec.containers.0.livenessProbe", DELETE),
    ),
    case(
        "k8s-image-pinned",
        "acme-ranking",
        "container ranking-service image recplatprodacr1a2b.azurecr.io/ranking-service:latest "
        "uses the latest tag; pin it with a version tag or @sha256 digest",
        (
            "spec.template.spec.containers.0.image",
            "recplatprodacr1a2b.azurecr.io/ranking-service:latest",
        ),
    ),
    case(
        "k8s-image-pinned",
        "acme-training",
        "container ranking-training image recplatprodacr1a2b.azurecr.io/ranking-training "
        "has no tag; pin it with a version tag or @sha256 digest",
        (f"{CRON_SPEC}.containers.0.image", "recplatprodacr1a2b.azurecr.io/ranking-training"),
    ),
    case(
        "k8s-no-host-namespaces",
        "acme-ranking",
        "sets hostNetwork=true; remove it",
        ("spec.template.spec.hostNetwork", True),
    ),
    case(
        "k8s-no-host-namespaces",
        "acme-backfill",
        "sets hostPID=true; remove it",
        ("spec.template.spec.hostPID", True),
    ),
    case(
        "k8s-no-host-path",
        "acme-training",
        "mounts hostPath volume docker; use emptyDir, a CSI secret or a persistent volume claim",
        (f"{CRON_SPEC}.volumes.0", {"name": "docker", "hostPath": {"path": "/var/run"}}),
    ),
    case(
        "k8s-not-default-namespace",
        "acme-backfill",
        "sets metadata.namespace=default; put it in the brand's namespace (brand-<name>) "
        "or the component's own namespace",
        ("metadata.namespace", "default"),
    ),
    case(
        "k8s-dedicated-service-account",
        "acme-training",
        "sets serviceAccountName=default; run it as a dedicated ServiceAccount "
        "(the one federated to the workload identity)",
        (f"{CRON_SPEC}.serviceAccountName", "default"),
    ),
    # Ingress
    case(
        "k8s-ingress-tls",
        "acme-ranking-ingress",
        "has no spec.tls, so its routes are served over plain HTTP; add spec.tls with the rule "
        "hosts and a certificate secret (app routing: annotation "
        "kubernetes.azure.com/tls-cert-keyvault-uri and secretName keyvault-<ingress name>)",
        ("spec.tls", DELETE),
    ),
    case(
        "k8s-ingress-tls",
        "acme-ranking-ingress",
        "has rule 0 without a host, which its TLS certificate cannot cover; set the host and "
        "list it under spec.tls[].hosts",
        ("spec.rules.0.host", DELETE),
    ),
    case(
        "k8s-ingress-tls",
        "acme-ranking-ingress",
        "serves host api.example.org without TLS; list it under spec.tls[].hosts",
        ("spec.rules.0.host", "api.example.org"),
    ),
    case(
        "k8s-ingress-tls",
        "acme-ranking-ingress",
        "sets nginx.ingress.kubernetes.io/ssl-redirect=false, which answers plain HTTP; remove it "
        "or set nginx.ingress.kubernetes.io/force-ssl-redirect=true",
        ("metadata.annotations", {"nginx.ingress.kubernetes.io/ssl-redirect": "false"}),
    ),
    # Stack
    case(
        "brand-namespace-default-deny",
        "acme-namespace",
        "is brand namespace brand-acme without a default-deny NetworkPolicy; add one with "
        "podSelector {} and policyTypes [Ingress, Egress] and no rules",
        ("@acme-default-deny:spec.policyTypes", ["Ingress"]),
    ),
    case(
        "deployment-has-pdb",
        "acme-ranking",
        "is Deployment brand-acme/ranking without a PodDisruptionBudget; add one whose "
        "selector matches the pod template labels",
        ("@acme-ranking-pdb:spec.selector.matchLabels.app", "other"),
    ),
    case(
        "deployment-has-hpa",
        "acme-ranking",
        "is Deployment brand-acme/ranking without a HorizontalPodAutoscaler; add one with "
        "scaleTargetRef kind Deployment and this name",
        ("@acme-ranking-hpa:spec.scaleTargetRef.name", "ranking-old"),
    ),
    case(
        "k8s-image-from-environment-acr",
        "acme-ranking",
        "container ranking-service pulls ghcr.io/acme/ranking:1.0 from ghcr.io; push it to "
        "recplatprodacr1a2b.azurecr.io and reference it there",
        ("spec.template.spec.containers.0.image", "ghcr.io/acme/ranking:1.0"),
    ),
]


def apply(stack: list[dict[str, Any]], insecure: Insecure) -> str:
    """Turn the insecure option on; ``@name:path`` edits another resource. Returns the URN."""
    for path, value in insecure.changes:
        name = insecure.resource
        if path.startswith("@"):
            name, path = path[1:].split(":", 1)
        set_path(resource(stack, name)["inputs"], path, value)
    return str(resource(stack, insecure.resource)["urn"])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_known_good_stack_has_no_violation_at_all(stack: str) -> None:
    report = evaluate_stack(known_good_stack(stack), stack, STRICT)
    assert report.violations == (), report.render()


@pytest.mark.parametrize("insecure", CASES, ids=[c.id for c in CASES])
def test_each_insecure_option_is_caught_by_its_policy_alone(insecure: Insecure) -> None:
    stack = known_good_stack(insecure.stack)
    urn = apply(stack, insecure)

    report = evaluate_stack(stack, insecure.stack, STRICT)

    found = [(v.policy, v.urn, v.message) for v in report.violations]
    expected = (insecure.policy, urn, f"policy {insecure.policy}: {urn} {insecure.problem}")
    assert found == [expected], report.render()
    assert report.mandatory


def test_every_policy_has_an_insecure_case() -> None:
    covered = {c.policy for c in CASES}
    missing = [policy.name for policy in ALL_POLICIES if policy.name not in covered]
    assert missing == []


PROD_ONLY = [c for c in CASES if c.policy.endswith("-prod")]


@pytest.mark.parametrize("insecure", PROD_ONLY, ids=[c.id for c in PROD_ONLY])
def test_prod_only_policies_accept_the_same_setting_in_dev(insecure: Insecure) -> None:
    stack = known_good_stack("dev")
    apply(stack, insecure)

    report = evaluate_stack(stack, "dev", STRICT)

    assert [v.policy for v in report.violations] == [], report.render()
