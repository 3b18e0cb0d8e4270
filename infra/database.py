"""PostgreSQL Flexible Server: MLflow's backend store, reachable from the VNet only.

Every stack uses private access (VNet integration in the delegated ``postgres``
subnet), dev included: the alternative for public access, the ``0.0.0.0`` "allow
Azure services" firewall rule, admits every Azure tenant's outbound addresses, not
only this cluster's egress.

Entra authentication is on for operators; MLflow itself connects with a generated
password because its SQLAlchemy store cannot fetch Entra tokens. That password
exists only as a Pulumi secret and as Key Vault secrets (alone, and inside the
backend-store URI the MLflow server reads through the CSI driver).

The server takes one management operation at a time: its child resources (databases,
configurations, firewall rules) written in parallel fail with ``ServerIsBusy``, so
each waits for the previous one. Settings already at Azure's default are not written
(``require_secure_transport`` is ``on`` by default; policy ``postgres-tls-required``
refuses a configuration that turns it off).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pulumi_azure_native import dbforpostgresql, privatedns

from infra.config import DatabaseConfig
from infra.vault import Vault, store_secret

DATABASE_NAME = "mlflow"
ADMIN_LOGIN = "mlflowadmin"
PASSWORD_SECRET = "mlflow-db-password"  # noqa: S105 - a name, not a secret
BACKEND_STORE_URI_SECRET = "mlflow-backend-store-uri"  # noqa: S105 - a name, not a secret


@dataclass(frozen=True)
class DatabaseArgs:
    """Inputs of ``Database``."""

    server_name: str
    config: DatabaseConfig
    tenant_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    location: str
    delegated_subnet_id: pulumi.Input[str]
    vnet_id: pulumi.Input[str]
    private_dns_zone_id: pulumi.Input[str] | None
    """The network's zone for the server; ``None`` (no private endpoints, dev) makes the
    component create ``<server>.private.postgres.database.azure.com`` linked to ``vnet_id``."""
    vault: Vault
    tags: dict[str, str]


class Database(pulumi.ComponentResource):
    """A PostgreSQL Flexible Server, the ``mlflow`` database and its credentials in Key Vault."""

    server_fqdn: pulumi.Output[str]
    server_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:database:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        dns_zone_id, zone_link = self._dns_zone(name, args)

        # URL-safe specials only: the password is embedded in the backend-store URI.
        password = random.RandomPassword(
            f"{name}-password",
            length=32,
            special=True,
            override_special="-_.~",
            min_lower=2,
            min_upper=2,
            min_numeric=2,
            opts=child,
        )

        server = self._server(name, args, password.result, dns_zone_id, zone_link)
        # Server children, one at a time (ServerIsBusy): a new one depends on the last.
        database = dbforpostgresql.Database(
            f"{name}-mlflow",
            database_name=DATABASE_NAME,
            server_name=server.name,
            resource_group_name=args.resource_group_name,
            charset="UTF8",
            collation="en_US.utf8",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[server]),
        )

        self._store_credentials(name, args, server, database, password.result)

        self.server_fqdn = server.fully_qualified_domain_name.apply(lambda fqdn: fqdn or "")
        self.server_id = server.id
        self.register_outputs({"serverFqdn": self.server_fqdn, "serverId": self.server_id})

    def _server(
        self,
        name: str,
        args: DatabaseArgs,
        password: pulumi.Output[str],
        dns_zone_id: pulumi.Input[str],
        zone_link: privatedns.VirtualNetworkLink | None,
    ) -> dbforpostgresql.Server:
        """The Flexible Server, in the delegated subnet, registered in ``dns_zone_id``."""
        config = args.config
        return dbforpostgresql.Server(
            f"{name}-server",
            server_name=args.server_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            version=config.version,
            sku=dbforpostgresql.SkuArgs(name=config.sku_name, tier=config.sku_tier),
            storage=dbforpostgresql.StorageArgs(
                storage_size_gb=config.storage_gb, auto_grow="Enabled"
            ),
            backup=dbforpostgresql.BackupArgs(
                backup_retention_days=config.backup_retention_days,
                geo_redundant_backup="Enabled" if config.geo_redundant_backup else "Disabled",
            ),
            high_availability=dbforpostgresql.HighAvailabilityArgs(
                mode="ZoneRedundant" if config.zone_redundant_ha else "Disabled"
            ),
            availability_zone=config.zone,
            administrator_login=ADMIN_LOGIN,
            administrator_login_password=password,
            auth_config=dbforpostgresql.AuthConfigArgs(
                active_directory_auth="Enabled",
                password_auth="Enabled",  # noqa: S106 - an Azure setting
                tenant_id=args.tenant_id,
            ),
            # Private access needs no firewall rule: only the VNet (AKS pods) reaches it.
            network=dbforpostgresql.NetworkArgs(
                public_network_access="Disabled",
                delegated_subnet_resource_id=args.delegated_subnet_id,
                private_dns_zone_arm_resource_id=dns_zone_id,
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                additional_secret_outputs=["administratorLoginPassword"],
                # The zone must resolve from the VNet before the server registers in it.
                depends_on=[zone_link] if zone_link is not None else [],
            ),
        )

    def _store_credentials(
        self,
        name: str,
        args: DatabaseArgs,
        server: dbforpostgresql.Server,
        database: dbforpostgresql.Database,
        password: pulumi.Output[str],
    ) -> None:
        """The password alone, and inside MLflow's backend-store URI, as Key Vault secrets."""
        store_secret(
            f"{name}-password-secret",
            vault=args.vault,
            secret_name=PASSWORD_SECRET,
            value=password,
            tags=args.tags,
            parent=self,
        )
        backend_store_uri = pulumi.Output.all(
            server.fully_qualified_domain_name, password, database.name
        ).apply(
            lambda parts: (
                f"postgresql://{ADMIN_LOGIN}:{parts[1]}@{parts[0]}:5432/{parts[2]}?sslmode=require"
            )
        )
        store_secret(
            f"{name}-uri-secret",
            vault=args.vault,
            secret_name=BACKEND_STORE_URI_SECRET,
            value=pulumi.Output.secret(backend_store_uri),
            tags=args.tags,
            parent=self,
        )

    def _dns_zone(
        self, name: str, args: DatabaseArgs
    ) -> tuple[pulumi.Input[str], privatedns.VirtualNetworkLink | None]:
        """The private DNS zone the server registers in, created here when the network has none."""
        if args.private_dns_zone_id is not None:
            return args.private_dns_zone_id, None
        child = pulumi.ResourceOptions(parent=self)
        zone = privatedns.PrivateZone(
            f"{name}-dns",
            private_zone_name=f"{args.server_name}.private.postgres.database.azure.com",
            resource_group_name=args.resource_group_name,
            location="global",
            tags=args.tags,
            opts=child,
        )
        link = privatedns.VirtualNetworkLink(
            f"{name}-dns-link",
            virtual_network_link_name=f"{args.server_name}-link",
            private_zone_name=zone.name,
            resource_group_name=args.resource_group_name,
            location="global",
            virtual_network=privatedns.SubResourceArgs(id=args.vnet_id),
            registration_enabled=False,
            tags=args.tags,
            opts=child,
        )
        return zone.id, link
