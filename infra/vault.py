"""The environment's Key Vault: RBAC-authorised, soft-deleted, private in production.

Secrets are written through ARM (``keyvault.Secret``), which works from outside the
VNet even when the data plane is closed, so ``pulumi up`` needs no network path in.
Soft delete is always on, and a soft-deleted name cannot be reused: the vault name is
therefore stable per stack (see ``environment_names``), never random.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import keyvault

from infra.config import VaultConfig
from infra.private_endpoint import PrivateEndpointArgs, private_endpoint


@dataclass(frozen=True)
class VaultArgs:
    """Inputs of ``Vault``."""

    vault_name: str
    config: VaultConfig
    tenant_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    location: str
    nodes_subnet_id: pulumi.Input[str]
    endpoints_subnet_id: pulumi.Input[str]
    dns_zone_id: pulumi.Input[str] | None
    """Private DNS zone for ``vault``; ``None`` when private endpoints are off."""
    tags: dict[str, str]


class Vault(pulumi.ComponentResource):
    """A Key Vault that grants access through Azure RBAC only."""

    vault_name: pulumi.Output[str]
    vault_id: pulumi.Output[str]
    vault_uri: pulumi.Output[str]
    resource_group_name: pulumi.Input[str]

    def __init__(
        self, name: str, args: VaultArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:vault:Vault", name, None, opts)
        private = args.dns_zone_id is not None

        vault = keyvault.Vault(
            f"{name}-kv",
            vault_name=args.vault_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family="A", name=keyvault.SkuName.STANDARD),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=args.config.soft_delete_retention_days,
                # Purge protection can be turned on but never off; Azure rejects `false`.
                enable_purge_protection=True if args.config.purge_protection else None,
                public_network_access="Disabled" if private else "Enabled",
                network_acls=keyvault.NetworkRuleSetArgs(
                    default_action="Deny",
                    bypass="AzureServices",
                    virtual_network_rules=[]
                    if private
                    else [keyvault.VirtualNetworkRuleArgs(id=args.nodes_subnet_id)],
                ),
                enabled_for_deployment=False,
                enabled_for_disk_encryption=False,
                enabled_for_template_deployment=False,
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        if args.dns_zone_id is not None:
            private_endpoint(
                f"{name}-pe",
                f"pe-{args.vault_name}",
                PrivateEndpointArgs(
                    resource_group_name=args.resource_group_name,
                    location=args.location,
                    subnet_id=args.endpoints_subnet_id,
                    service_id=vault.id,
                    group_id="vault",
                    dns_zone_id=args.dns_zone_id,
                    tags=args.tags,
                ),
                parent=self,
            )

        self.resource_group_name = args.resource_group_name
        self.vault_name = vault.name
        self.vault_id = vault.id
        self.vault_uri = vault.properties.apply(lambda props: props.vault_uri or "")
        self.register_outputs(
            {"vaultName": self.vault_name, "vaultId": self.vault_id, "vaultUri": self.vault_uri}
        )


def store_secret(
    name: str,
    *,
    vault: Vault,
    secret_name: str,
    value: pulumi.Input[str],
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> keyvault.Secret:
    """Store ``value`` in ``vault`` as ``secret_name``; it stays a Pulumi secret throughout."""
    return keyvault.Secret(
        name,
        secret_name=secret_name,
        vault_name=vault.vault_name,
        resource_group_name=vault.resource_group_name,
        properties=keyvault.SecretPropertiesArgs(
            value=pulumi.Output.secret(value), content_type="text/plain"
        ),
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
