"""A known-good planned stack: one of every resource the policies judge, all of them compliant.

Tests copy it, turn one insecure option on, and check that exactly the matching
policy reports it. Props are camelCase inputs, as ``args.props`` holds them in a
real preview.
"""

from __future__ import annotations

import copy
from typing import Any

PROJECT = "recplat"
ACR = "recplatprodacr1a2b"
SUB = "/subscriptions/00000000-0000-0000-0000-000000000000"
RG = f"{SUB}/resourceGroups/recplat-prod"
ACCOUNT_ID = f"{RG}/providers/Microsoft.Storage/storageAccounts/recplatlake1a2b"
VAULT_ID = f"{RG}/providers/Microsoft.KeyVault/vaults/recplat-kv-1a2b"
ROLE_DEFINITIONS = f"{SUB}/providers/Microsoft.Authorization/roleDefinitions"
BLOB_DATA_CONTRIBUTOR = f"{ROLE_DEFINITIONS}/ba92f5b4-2d11-453d-a403-e96b0029c9fe"
ACR_PULL = f"{ROLE_DEFINITIONS}/7f951dda-4ed3-4680-a7ca-43fe172d538d"
BRAND_STACK = "recplat:brand:BrandStack"


def urn(stack: str, type_chain: str, name: str) -> str:
    """A resource URN as the engine builds it."""
    return f"urn:pulumi:{stack}::{PROJECT}::{type_chain}::{name}"


def _tags(stack: str, brand: bool = False) -> dict[str, str]:
    tags = {"environment": stack, "managed-by": "pulumi", "project": "recplat"}
    if brand:
        tags |= {"brand": "acme", "owner": "recs@example.com", "cost-center": "CC-1"}
    return tags


def _security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _container(name: str, *, probes: bool) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": f"{ACR}.azurecr.io/{name}:1.4.2",
        "securityContext": _security_context(),
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "500m", "memory": "512Mi"},
        },
    }
    if probes:
        container["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": 8000}}
        container["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": 8000}}
    return container


def _pod_spec(container: str, *, probes: bool) -> dict[str, Any]:
    return {
        "serviceAccountName": "acme-ranking",
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [_container(container, probes=probes)],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


def _metadata(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": "brand-acme", "labels": labels or {"app": name}}


def _resources(stack: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(type chain, name, props) of every resource; brand ones sit under a BrandStack."""
    prod = stack == "prod"
    brand_labels = {"brand": "acme", "recplat/owner": "recs", "cost-center": "cc-1"}
    service_labels = {"app": "ranking", "recplat.io/brand": "acme"}
    return [
        (
            "azure-native:storage:StorageAccount",
            "lake",
            {
                "kind": "StorageV2",
                "minimumTlsVersion": "TLS1_2",
                "enableHttpsTrafficOnly": True,
                "allowBlobPublicAccess": False,
                "allowSharedKeyAccess": False,
                "isHnsEnabled": True,
                "publicNetworkAccess": "Disabled" if prod else "Enabled",
                "networkRuleSet": {"defaultAction": "Deny", "bypass": "AzureServices"},
                "tags": _tags(stack),
            },
        ),
        (
            "azure-native:storage:BlobServiceProperties",
            "lake-blob",
            {
                "deleteRetentionPolicy": {"enabled": True, "days": 14},
                "containerDeleteRetentionPolicy": {"enabled": True, "days": 7},
            },
        ),
        ("azure-native:storage:BlobContainer", "mlflow", {"publicAccess": "None"}),
        (
            "azure-native:keyvault:Vault",
            "vault",
            {
                "properties": {
                    "tenantId": "11111111-1111-1111-1111-111111111111",
                    "sku": {"family": "A", "name": "standard"},
                    "enableRbacAuthorization": True,
                    "enableSoftDelete": True,
                    "enablePurgeProtection": True,
                    "publicNetworkAccess": "Disabled" if prod else "Enabled",
                },
                "tags": _tags(stack),
            },
        ),
        (
            "azure-native:dbforpostgresql:Server",
            "mlflow-db",
            {
                "authConfig": {"activeDirectoryAuth": "Enabled", "passwordAuth": "Enabled"},
                "highAvailability": {"mode": "ZoneRedundant" if prod else "Disabled"},
                "backup": {"geoRedundantBackup": "Enabled" if prod else "Disabled"},
                "network": {
                    "publicNetworkAccess": "Disabled" if prod else "Enabled",
                    "delegatedSubnetResourceId": f"{RG}/providers/Microsoft.Network/"
                    "virtualNetworks/vnet/subnets/postgres",
                },
                "tags": _tags(stack),
            },
        ),
        (
            "azure-native:dbforpostgresql:FirewallRule",
            "office",
            {"startIpAddress": "203.0.113.0", "endIpAddress": "203.0.113.255"},
        ),
        (
            "azure-native:dbforpostgresql:Configuration",
            "log-connections",
            {"configurationName": "log_connections", "value": "on", "source": "user-override"},
        ),
        (
            "azure-native:containerservice:ManagedCluster",
            "aks",
            {
                "kubernetesVersion": "1.35",
                "enableRBAC": True,
                "disableLocalAccounts": True,
                "aadProfile": {"managed": True, "enableAzureRBAC": True},
                "oidcIssuerProfile": {"enabled": True},
                "securityProfile": {"workloadIdentity": {"enabled": True}},
                "networkProfile": {
                    "networkPlugin": "azure",
                    "networkPluginMode": "overlay",
                    "networkPolicy": "cilium",
                },
                "agentPoolProfiles": [{"name": "system", "mode": "System", "count": 2}],
                "addonProfiles": {
                    "azurepolicy": {"enabled": True},
                    "omsagent": {
                        "enabled": True,
                        "config": {"logAnalyticsWorkspaceResourceID": f"{RG}/workspaces/logs"},
                    },
                    "azureKeyvaultSecretsProvider": {
                        "enabled": True,
                        "config": {"enableSecretRotation": "true"},
                    },
                },
                "azureMonitorProfile": {"metrics": {"enabled": True}},
                "autoUpgradeProfile": {"upgradeChannel": "stable"},
                "apiServerAccessProfile": {"authorizedIPRanges": ["198.51.100.0/24"]},
                "sku": {"name": "Base", "tier": "Standard" if prod else "Free"},
                "tags": _tags(stack),
            },
        ),
        (
            "azure-native:containerservice:AgentPool",
            "user",
            {"mode": "User", "enableAutoScaling": True, "tags": _tags(stack)},
        ),
        (
            "azure-native:containerregistry:Registry",
            "acr",
            {"registryName": ACR, "adminUserEnabled": False, "tags": _tags(stack)},
        ),
        (
            "azure-native:authorization:RoleAssignment",
            "kubelet-acr-pull",
            {
                "principalId": "22222222-2222-2222-2222-222222222222",
                "principalType": "ServicePrincipal",
                "roleDefinitionId": ACR_PULL,
                "scope": f"{RG}/providers/Microsoft.ContainerRegistry/registries/{ACR}",
            },
        ),
        (
            f"{BRAND_STACK}$azure-native:managedidentity:UserAssignedIdentity",
            "acme-identity",
            {"tags": _tags(stack, brand=True)},
        ),
        (
            f"{BRAND_STACK}$azure-native:authorization:RoleAssignment",
            "acme-lake",
            {
                "principalId": "33333333-3333-3333-3333-333333333333",
                "principalType": "ServicePrincipal",
                "roleDefinitionId": BLOB_DATA_CONTRIBUTOR,
                "scope": f"{ACCOUNT_ID}/blobServices/default/containers/acme",
            },
        ),
        (
            f"{BRAND_STACK}$kubernetes:core/v1:Namespace",
            "acme-namespace",
            {"metadata": {"name": "brand-acme", "labels": brand_labels}},
        ),
        (
            f"{BRAND_STACK}$kubernetes:networking.k8s.io/v1:NetworkPolicy",
            "acme-default-deny",
            {
                "metadata": _metadata("default-deny"),
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            },
        ),
        (
            f"{BRAND_STACK}$kubernetes:apps/v1:Deployment",
            "acme-ranking",
            {
                "metadata": _metadata("ranking", service_labels),
                "spec": {
                    "selector": {"matchLabels": {"app": "ranking"}},
                    "template": {
                        "metadata": {"labels": service_labels},
                        "spec": _pod_spec("ranking-service", probes=True),
                    },
                },
            },
        ),
        (
            f"{BRAND_STACK}$kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
            "acme-ranking-hpa",
            {
                "metadata": _metadata("ranking"),
                "spec": {
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "ranking",
                    },
                    "minReplicas": 2,
                    "maxReplicas": 8,
                },
            },
        ),
        (
            f"{BRAND_STACK}$kubernetes:policy/v1:PodDisruptionBudget",
            "acme-ranking-pdb",
            {
                "metadata": _metadata("ranking"),
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "ranking"}}},
            },
        ),
        (
            f"{BRAND_STACK}$kubernetes:networking.k8s.io/v1:Ingress",
            "acme-ranking-ingress",
            {
                "metadata": {
                    **_metadata("ranking"),
                    "annotations": {
                        "kubernetes.azure.com/tls-cert-keyvault-uri": "https://recplat-kv-1a2b"
                        ".vault.azure.net/certificates/recplat-api-tls",
                        "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
                    },
                },
                "spec": {
                    "ingressClassName": "recplat",
                    "tls": [{"hosts": ["api.example.com"], "secretName": "keyvault-ranking"}],
                    "rules": [
                        {
                            "host": "api.example.com",
                            "http": {
                                "paths": [
                                    {
                                        "path": "/brands/acme/(rank|feedback)$",
                                        "pathType": "ImplementationSpecific",
                                        "backend": {
                                            "service": {"name": "ranking", "port": {"name": "http"}}
                                        },
                                    }
                                ]
                            },
                        }
                    ],
                },
            },
        ),
        (
            f"{BRAND_STACK}$kubernetes:batch/v1:CronJob",
            "acme-training",
            {
                "metadata": _metadata("training"),
                "spec": {
                    "schedule": "15 3 * * *",
                    "concurrencyPolicy": "Forbid",
                    "jobTemplate": {
                        "spec": {"template": {"spec": _pod_spec("ranking-training", probes=False)}}
                    },
                },
            },
        ),
        (
            f"{BRAND_STACK}$kubernetes:batch/v1:Job",
            "acme-backfill",
            {
                "metadata": _metadata("backfill"),
                "spec": {"template": {"spec": _pod_spec("ranking-training", probes=False)}},
            },
        ),
    ]


def known_good_stack(stack: str) -> list[dict[str, Any]]:
    """The compliant stack, as ``evaluate_stack`` takes it; a fresh deep copy every call."""
    planned = []
    for type_chain, name, props in _resources(stack):
        parent = urn(stack, BRAND_STACK, "acme") if type_chain.startswith(BRAND_STACK) else None
        planned.append(
            {
                "urn": urn(stack, type_chain, name),
                "type": type_chain.rsplit("$", 1)[-1],
                "name": name,
                "inputs": copy.deepcopy(props),
                "parent": parent,
            }
        )
    return planned


def resource(stack: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The planned resource named ``name``."""
    return next(item for item in stack if item["name"] == name)


DELETE = object()
"""Marker for :func:`set_path`: remove the key instead of setting it."""


def set_path(props: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with DELETE remove) the input at dotted ``path``; digits index lists."""
    *parents, last = path.split(".")
    node: Any = props
    for key in parents:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    if value is DELETE:
        del node[int(last) if last.isdigit() else last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
