"""A stand-in Azure for the offline plan: realistic outputs for every resource the program creates.

Pulumi's mocks echo a resource's inputs; this adds what Azure would compute:
ARM ids in the ``/subscriptions/<id>/resourceGroups/<rg>/providers/...`` shape,
the cluster's OIDC issuer, identities' principal and client ids, login servers,
endpoints, a user kubeconfig, secret values for generated passwords, and random ids. Every
value is derived from the resource's URN, so two plans of one tree are identical
(which is what makes ``recplat plan --diff`` meaningful).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import pulumi
import yaml

PLACEHOLDER_SUBSCRIPTION = "00000000-0000-4000-8000-00000000c0de"
TENANT_ID = "11111111-2222-4333-8444-555555555555"
DEPLOYER_OBJECT_ID = "66666666-7777-4888-9999-000000000000"
_NAMESPACE = uuid.UUID("c7d6a3c4-9d0e-4f6b-8f1e-2a4b6c8d0e1f")

# azure-native resource_type -> (ARM resource type path, input holding the physical name).
_ARM_TYPES: dict[str, tuple[str, str]] = {
    "azure-native:resources:ResourceGroup": ("", "resourceGroupName"),
    "azure-native:network:VirtualNetwork": (
        "Microsoft.Network/virtualNetworks",
        "virtualNetworkName",
    ),
    "azure-native:network:Subnet": (
        "Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets",
        "subnetName",
    ),
    "azure-native:network:NetworkSecurityGroup": (
        "Microsoft.Network/networkSecurityGroups",
        "networkSecurityGroupName",
    ),
    "azure-native:network:PrivateEndpoint": (
        "Microsoft.Network/privateEndpoints",
        "privateEndpointName",
    ),
    "azure-native:network:PrivateDnsZoneGroup": (
        "Microsoft.Network/privateEndpoints/{privateEndpointName}/privateDnsZoneGroups",
        "privateDnsZoneGroupName",
    ),
    "azure-native:privatedns:PrivateZone": ("Microsoft.Network/privateDnsZones", "privateZoneName"),
    "azure-native:privatedns:VirtualNetworkLink": (
        "Microsoft.Network/privateDnsZones/{privateZoneName}/virtualNetworkLinks",
        "virtualNetworkLinkName",
    ),
    "azure-native:containerservice:ManagedCluster": (
        "Microsoft.ContainerService/managedClusters",
        "resourceName",
    ),
    "azure-native:containerservice:AgentPool": (
        "Microsoft.ContainerService/managedClusters/{resourceName}/agentPools",
        "agentPoolName",
    ),
    "azure-native:containerservice:MaintenanceConfiguration": (
        "Microsoft.ContainerService/managedClusters/{resourceName}/maintenanceConfigurations",
        "configName",
    ),
    "azure-native:containerregistry:Registry": (
        "Microsoft.ContainerRegistry/registries",
        "registryName",
    ),
    "azure-native:storage:StorageAccount": ("Microsoft.Storage/storageAccounts", "accountName"),
    "azure-native:storage:BlobServiceProperties": (
        "Microsoft.Storage/storageAccounts/{accountName}/blobServices",
        "blobServicesName",
    ),
    "azure-native:storage:BlobContainer": (
        "Microsoft.Storage/storageAccounts/{accountName}/blobServices/default/containers",
        "containerName",
    ),
    "azure-native:storage:ManagementPolicy": (
        "Microsoft.Storage/storageAccounts/{accountName}/managementPolicies",
        "managementPolicyName",
    ),
    "azure-native:keyvault:Vault": ("Microsoft.KeyVault/vaults", "vaultName"),
    "azure-native:keyvault:Secret": ("Microsoft.KeyVault/vaults/{vaultName}/secrets", "secretName"),
    "azure-native:dbforpostgresql:Server": (
        "Microsoft.DBforPostgreSQL/flexibleServers",
        "serverName",
    ),
    "azure-native:dbforpostgresql:Database": (
        "Microsoft.DBforPostgreSQL/flexibleServers/{serverName}/databases",
        "databaseName",
    ),
    "azure-native:dbforpostgresql:FirewallRule": (
        "Microsoft.DBforPostgreSQL/flexibleServers/{serverName}/firewallRules",
        "firewallRuleName",
    ),
    "azure-native:dbforpostgresql:Configuration": (
        "Microsoft.DBforPostgreSQL/flexibleServers/{serverName}/configurations",
        "configurationName",
    ),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "resourceName",
    ),
    "azure-native:managedidentity:FederatedIdentityCredential": (
        "Microsoft.ManagedIdentity/userAssignedIdentities/{resourceName}/federatedIdentityCredentials",
        "federatedIdentityCredentialResourceName",
    ),
    "azure-native:operationalinsights:Workspace": (
        "Microsoft.OperationalInsights/workspaces",
        "workspaceName",
    ),
    "azure-native:applicationinsights:Component": ("Microsoft.Insights/components", "resourceName"),
    "azure-native:monitor:AzureMonitorWorkspace": (
        "Microsoft.Monitor/accounts",
        "azureMonitorWorkspaceName",
    ),
    "azure-native:monitor:DataCollectionEndpoint": (
        "Microsoft.Insights/dataCollectionEndpoints",
        "dataCollectionEndpointName",
    ),
    "azure-native:monitor:DataCollectionRule": (
        "Microsoft.Insights/dataCollectionRules",
        "dataCollectionRuleName",
    ),
    "azure-native:monitor:ActionGroup": ("Microsoft.Insights/actionGroups", "actionGroupName"),
    "azure-native:alertsmanagement:PrometheusRuleGroup": (
        "Microsoft.AlertsManagement/prometheusRuleGroups",
        "ruleGroupName",
    ),
    "azure-native:dashboard:Grafana": ("Microsoft.Dashboard/grafana", "workspaceName"),
}


def stable_guid(*parts: str) -> str:
    """A GUID derived from ``parts``: the same resource always gets the same one."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def mock_kubeconfig(cluster: str, fqdn: str) -> str:
    """A user kubeconfig shaped like AKS returns for an Entra cluster (no credentials in it)."""
    certificate = base64.b64encode(f"mock CA for {cluster}".encode()).decode()
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster,
                    "cluster": {
                        "certificate-authority-data": certificate,
                        "server": f"https://{fqdn}:443",
                    },
                }
            ],
            "contexts": [
                {"name": cluster, "context": {"cluster": cluster, "user": f"clusterUser_{cluster}"}}
            ],
            "current-context": cluster,
            "users": [
                {
                    "name": f"clusterUser_{cluster}",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "kubelogin",
                            "args": ["get-resource_type", "--login", "devicecode"],
                        }
                    },
                }
            ],
        },
        sort_keys=False,
    )


class AzureMocks(pulumi.runtime.Mocks):
    """Computes Azure's outputs for ``subscription_id``; remembers every secret it hands out."""

    def __init__(self, subscription_id: str) -> None:
        self.subscription_id = subscription_id
        self.secret_values: list[str] = []

    def _arm_id(self, resource_type: str, inputs: dict[str, Any], name: str) -> str:
        base = f"/subscriptions/{self.subscription_id}"
        if resource_type == "azure-native:authorization:RoleAssignment":
            scope = inputs.get("scope", base)
            return f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
        group = inputs.get("resourceGroupName", "rg-mock")
        if resource_type == "azure-native:resources:ResourceGroup":
            return f"{base}/resourceGroups/{name}"
        arm_type, _ = _ARM_TYPES.get(
            resource_type, (f"Microsoft.Mock/{resource_type.rsplit(':', 1)[-1]}", "")
        )
        path = arm_type.format(**{key: str(value) for key, value in inputs.items()})
        return f"{base}/resourceGroups/{group}/providers/{path}/{name}"

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        resource_type, inputs = args.typ, dict(args.inputs)
        key = f"{resource_type}/{args.name}"
        outputs: dict[str, Any] = dict(inputs)
        if resource_type.startswith("azure-native:"):
            _, name_key = _ARM_TYPES.get(resource_type, ("", ""))
            name = str(inputs.get(name_key) or inputs.get("roleAssignmentName") or args.name)
            resource_id = self._arm_id(resource_type, inputs, name)
            outputs.update(name=name, id=resource_id, type=resource_type)
            outputs.update(self._computed(resource_type, inputs, name, key))
            return resource_id, outputs
        if resource_type == "random:index/randomPassword:RandomPassword":
            value = (
                "Mock-"
                + hashlib.sha256(key.encode()).hexdigest()[: int(inputs.get("length", 32)) - 5]
            )
            self.secret_values.append(value)
            outputs.update(
                result=pulumi.Output.secret(value), bcryptHash=pulumi.Output.secret("$2a$10$mock")
            )
            return stable_guid(key), outputs
        if resource_type == "random:index/randomId:RandomId":
            raw = hashlib.sha256(key.encode()).digest()[: int(inputs["byteLength"])]
            outputs.update(
                hex=raw.hex(),
                b64Url=base64.urlsafe_b64encode(raw).decode().rstrip("="),
                b64Std=base64.b64encode(raw).decode(),
                dec=str(int.from_bytes(raw, "big")),
            )
            return outputs["b64Url"], outputs
        if resource_type.startswith("kubernetes:") and "metadata" in inputs:
            metadata = dict(inputs["metadata"] or {})
            metadata.setdefault("uid", stable_guid(key))
            outputs["metadata"] = metadata
            identity = metadata.get("name", args.name)
            namespace = metadata.get("namespace")
            return f"{namespace}/{identity}" if namespace else str(identity), outputs
        return stable_guid(key), outputs

    def _computed(
        self, resource_type: str, inputs: dict[str, Any], name: str, key: str
    ) -> dict[str, Any]:
        """What Azure adds to ``resource_type``'s inputs: endpoints, identities, keys."""
        location = inputs.get("location", "westeurope")
        if resource_type == "azure-native:containerservice:ManagedCluster":
            return self._managed_cluster(inputs, name, key, location)
        if resource_type == "azure-native:managedidentity:UserAssignedIdentity":
            return {
                "principalId": stable_guid(key, "principal"),
                "clientId": stable_guid(key, "client"),
                "tenantId": TENANT_ID,
            }
        if resource_type == "azure-native:containerregistry:Registry":
            return {"loginServer": f"{name.lower()}.azurecr.io"}
        if resource_type == "azure-native:storage:StorageAccount":
            return {
                "primaryEndpoints": {
                    "blob": f"https://{name}.blob.core.windows.net/",
                    "dfs": f"https://{name}.dfs.core.windows.net/",
                }
            }
        if resource_type == "azure-native:keyvault:Vault":
            return {
                "properties": {
                    **dict(inputs.get("properties") or {}),
                    "vaultUri": f"https://{name}.vault.azure.net/",
                }
            }
        if resource_type == "azure-native:keyvault:Secret":
            uri = f"https://{inputs.get('vaultName')}.vault.azure.net/secrets/{name}"
            version = stable_guid(key, "version").replace("-", "")
            return {"properties": {"secretUri": uri, "secretUriWithVersion": f"{uri}/{version}"}}
        if resource_type == "azure-native:dbforpostgresql:Server":
            return {"fullyQualifiedDomainName": f"{name}.postgres.database.azure.com"}
        if resource_type == "azure-native:dashboard:Grafana":
            return _grafana(inputs, name, key)
        if resource_type == "azure-native:applicationinsights:Component":
            ikey = stable_guid(key, "ikey")
            return {
                "instrumentationKey": ikey,
                "connectionString": f"InstrumentationKey={ikey};IngestionEndpoint=https://{location}-5.in.applicationinsights.azure.com/",
            }
        return {}

    def _managed_cluster(
        self, inputs: dict[str, Any], name: str, key: str, location: str
    ) -> dict[str, Any]:
        """An AKS cluster's FQDN, OIDC issuer, its own identity and its kubelet's."""
        kubelet = stable_guid(key, "kubelet")
        return {
            "fqdn": f"{inputs.get('dnsPrefix', name)}.hcp.{location}.azmk8s.io",
            "oidcIssuerProfile": {
                "enabled": True,
                "issuerURL": f"https://{location}.oic.prod-aks.azure.com/"
                f"{TENANT_ID}/{stable_guid(key, 'oidc')}/",
            },
            "identity": {
                "type": "SystemAssigned",
                "principalId": stable_guid(key, "principal"),
            },
            "identityProfile": {
                "kubeletidentity": {
                    "clientId": stable_guid(kubelet, "client"),
                    "objectId": kubelet,
                    "resourceId": f"/subscriptions/{self.subscription_id}/resourceGroups/"
                    f"{inputs.get('nodeResourceGroup', 'MC_mock')}/providers/"
                    f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool",
                }
            },
        }

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        if args.token == "azure-native:authorization:getClientConfig":  # noqa: S105
            return {
                "clientId": stable_guid("deployer", "client"),
                "objectId": DEPLOYER_OBJECT_ID,
                "subscriptionId": self.subscription_id,
                "tenantId": TENANT_ID,
            }
        if args.token == "azure-native:containerservice:listManagedClusterUserCredentials":  # noqa: S105
            cluster = str(args.args.get("resourceName", "aks"))
            fqdn = f"{cluster}.hcp.westeurope.azmk8s.io"
            value = base64.b64encode(mock_kubeconfig(cluster, fqdn).encode()).decode()
            return {"kubeconfigs": [{"name": "clusterUser", "value": value}]}
        if args.token == "azure-native:containerservice:getManagedCluster":  # noqa: S105
            # The app routing add-on's own managed identity, as Azure reports it.
            cluster = str(args.args.get("resourceName", "aks"))
            identity = stable_guid("app-routing", cluster)
            return {
                "ingressProfile": {
                    "webAppRouting": {
                        "enabled": True,
                        "identity": {
                            "clientId": stable_guid(identity, "client"),
                            "objectId": identity,
                            "resourceId": f"/subscriptions/{self.subscription_id}/resourceGroups/"
                            f"MC_{cluster}/providers/Microsoft.ManagedIdentity/"
                            f"userAssignedIdentities/webapprouting-{cluster}",
                        },
                    }
                }
            }
        return {}


def _grafana(inputs: dict[str, Any], name: str, key: str) -> dict[str, Any]:
    """A Managed Grafana's endpoint and system-assigned identity."""
    properties = dict(inputs.get("properties") or {})
    properties["endpoint"] = f"https://{name}-{stable_guid(key)[:4]}.weu.grafana.azure.com"
    return {
        "properties": properties,
        "identity": {"type": "SystemAssigned", "principalId": stable_guid(key, "principal")},
    }
