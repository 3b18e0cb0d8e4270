"""The environment's ADLS Gen2 account: the lake every brand's container lives in.

Identity-only access (shared keys off, OAuth by default), TLS 1.2, no anonymous
blobs, a deny-by-default firewall, and in stacks with private endpoints no public
network path at all. Event data ages into the cool tier and is deleted after the
retention the stack configures; the ``mlflow`` container holds MLflow's artifacts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import storage
from ranking_features.events import EVENTS_DIR

from infra.config import LakeConfig
from infra.private_endpoint import PrivateEndpointArgs, private_endpoint

MLFLOW_CONTAINER = "mlflow"


@dataclass(frozen=True)
class DataLakeArgs:
    """Inputs of ``DataLake``."""

    account_name: str
    config: LakeConfig
    resource_group_name: pulumi.Input[str]
    location: str
    nodes_subnet_id: pulumi.Input[str]
    endpoints_subnet_id: pulumi.Input[str]
    dns_zone_ids: dict[str, pulumi.Output[str]]
    """Private DNS zones for ``blob`` and ``dfs``; empty when private endpoints are off."""
    event_containers: Sequence[str]
    """Brand containers whose ``events/`` prefix the lifecycle rules apply to."""
    tags: dict[str, str]


class DataLake(pulumi.ComponentResource):
    """An HNS storage account with soft delete, lifecycle rules and the ``mlflow`` container."""

    account_name: pulumi.Output[str]
    account_id: pulumi.Output[str]
    mlflow_container_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:datalake:DataLake", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        rg = args.resource_group_name
        account = self._account(name, args)

        # Versioning and change feed are not available on HNS accounts; soft delete is.
        retention = storage.DeleteRetentionPolicyArgs(
            enabled=True, days=args.config.soft_delete_days
        )
        storage.BlobServiceProperties(
            f"{name}-blob-service",
            account_name=account.name,
            resource_group_name=rg,
            blob_services_name="default",
            delete_retention_policy=retention,
            container_delete_retention_policy=retention,
            opts=child,
        )
        if args.event_containers:
            self._events_lifecycle(name, args, account)
        mlflow = storage.BlobContainer(
            f"{name}-mlflow",
            account_name=account.name,
            resource_group_name=rg,
            container_name=MLFLOW_CONTAINER,
            public_access=storage.PublicAccess.NONE,
            opts=child,
        )
        for group in ("blob", "dfs") if args.dns_zone_ids else ():
            private_endpoint(
                f"{name}-pe-{group}",
                f"pe-{args.account_name}-{group}",
                PrivateEndpointArgs(
                    resource_group_name=rg,
                    location=args.location,
                    subnet_id=args.endpoints_subnet_id,
                    service_id=account.id,
                    group_id=group,
                    dns_zone_id=args.dns_zone_ids[group],
                    tags=args.tags,
                ),
                parent=self,
            )

        self.account_name = account.name
        self.account_id = account.id
        self.mlflow_container_id = mlflow.id
        self.register_outputs(
            {
                "accountName": self.account_name,
                "accountId": self.account_id,
                "mlflowContainerId": self.mlflow_container_id,
            }
        )

    def _account(self, name: str, args: DataLakeArgs) -> storage.StorageAccount:
        """The HNS account: identity-only access, deny-by-default firewall, encrypted twice."""
        private = bool(args.dns_zone_ids)
        return storage.StorageAccount(
            f"{name}-account",
            account_name=args.account_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="StorageV2",
            sku=storage.SkuArgs(name=args.config.sku),
            access_tier=storage.AccessTier.HOT,
            is_hns_enabled=True,
            minimum_tls_version="TLS1_2",
            enable_https_traffic_only=True,
            allow_blob_public_access=False,
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            public_network_access="Disabled" if private else "Enabled",
            network_rule_set=storage.NetworkRuleSetArgs(
                default_action=storage.DefaultAction.DENY,
                bypass="AzureServices",
                # Without private endpoints the nodes reach the lake through a service endpoint.
                virtual_network_rules=[]
                if private
                else [
                    storage.VirtualNetworkRuleArgs(virtual_network_resource_id=args.nodes_subnet_id)
                ],
                ip_rules=[
                    storage.IPRuleArgs(i_p_address_or_range=cidr)
                    for cidr in args.config.allowed_ip_ranges
                ],
            ),
            encryption=storage.EncryptionArgs(
                key_source="Microsoft.Storage",
                require_infrastructure_encryption=True,
                services=storage.EncryptionServicesArgs(
                    blob=storage.EncryptionServiceArgs(enabled=True, key_type="Account"),
                    file=storage.EncryptionServiceArgs(enabled=True, key_type="Account"),
                ),
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _events_lifecycle(
        self, name: str, args: DataLakeArgs, account: storage.StorageAccount
    ) -> None:
        """Brand events move to the cool tier, then are deleted, after the configured days."""
        config = args.config
        base_blob = storage.ManagementPolicyBaseBlobArgs(
            tier_to_cool=storage.DateAfterModificationArgs(
                days_after_modification_greater_than=config.events_cool_after_days
            ),
            delete=storage.DateAfterModificationArgs(
                days_after_modification_greater_than=config.events_delete_after_days
            ),
        )
        storage.ManagementPolicy(
            f"{name}-lifecycle",
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            management_policy_name="default",
            policy=storage.ManagementPolicySchemaArgs(
                rules=[
                    storage.ManagementPolicyRuleArgs(
                        name="events-age-out",
                        enabled=True,
                        type="Lifecycle",
                        definition=storage.ManagementPolicyDefinitionArgs(
                            filters=storage.ManagementPolicyFilterArgs(
                                blob_types=["blockBlob"],
                                prefix_match=[
                                    f"{container}/{EVENTS_DIR}/"
                                    for container in sorted(args.event_containers)
                                ],
                            ),
                            actions=storage.ManagementPolicyActionArgs(base_blob=base_blob),
                        ),
                    )
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
