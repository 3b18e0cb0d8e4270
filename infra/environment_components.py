"""The environment's components, each declared from the stack config and the ones it needs.

``infra.environment.Environment`` wires them in dependency order; each function here maps
one component's ``*Args`` from an ``EnvironmentScope`` (the stack's config and names, its
resource group, the deployer, and the Environment as parent) and the components it
depends on, so that mapping reads in one place per component.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from infra.cluster import Cluster, ClusterArgs
from infra.cluster_monitoring import PLATFORM_RULES, ClusterMonitoring, ClusterMonitoringArgs
from infra.config import IngressExposure
from infra.dashboards.brand_dashboard import BrandDashboardArgs
from infra.dask_operator import DaskOperator, DaskOperatorArgs
from infra.database import Database, DatabaseArgs
from infra.datalake import DataLake, DataLakeArgs
from infra.environment_names import EnvironmentNames
from infra.ingress_edge import IngressEdge, IngressEdgeArgs
from infra.mlflow_access import create_access_job_network_policy
from infra.mlflow_server import MlflowServer, MlflowServerArgs
from infra.monitoring import Monitoring, MonitoringArgs
from infra.network import Network, NetworkArgs
from infra.registry import RegistryLocation
from infra.stack_config import StackConfig
from infra.vault import Vault, VaultArgs


@dataclass(frozen=True)
class EnvironmentScope:
    """What every component of one environment is declared with."""

    name: str
    """The Environment's logical name: the prefix of every component's name."""
    config: StackConfig
    names: EnvironmentNames
    resource_group_name: pulumi.Output[str]
    tenant_id: pulumi.Output[str]
    deployer_object_id: pulumi.Output[str]
    """Whoever runs ``pulumi up``, as Azure reports the signed-in client."""
    parent: pulumi.Resource

    @property
    def child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.parent)

    @property
    def deployer_principal_type(self) -> str:
        return str(self.config.access.deployer_principal_type)


def create_network(scope: EnvironmentScope) -> Network:
    config, names = scope.config, scope.names
    return Network(
        f"{scope.name}-network",
        NetworkArgs(
            resource_group_name=scope.resource_group_name,
            location=config.location,
            vnet_name=names.virtual_network,
            address_space=config.network.address_space,
            nodes_subnet=config.network.nodes_subnet,
            endpoints_subnet=config.network.endpoints_subnet,
            database_subnet=config.network.database_subnet,
            private_endpoints=config.network.private_endpoints,
            database_dns_zone=f"{names.database_server}.private.postgres.database.azure.com",
            public_ingress=config.ingress.exposure is IngressExposure.PUBLIC,
            tags=config.tags,
        ),
        opts=scope.child,
    )


def create_monitoring(
    scope: EnvironmentScope, dashboard_brands: Sequence[BrandDashboardArgs]
) -> Monitoring:
    config = scope.config
    return Monitoring(
        f"{scope.name}-monitoring",
        MonitoringArgs(
            names=scope.names,
            config=config.monitoring,
            subscription_id=config.subscription_id,
            resource_group_name=scope.resource_group_name,
            location=config.location,
            admin_group_object_ids=config.access.admin_group_object_ids,
            deployer_object_id=scope.deployer_object_id,
            deployer_principal_type=scope.deployer_principal_type,
            tags=config.tags,
            dashboard_brands=dashboard_brands,
        ),
        opts=scope.child,
    )


def create_cluster(
    scope: EnvironmentScope, network: Network, monitoring: Monitoring, registry: RegistryLocation
) -> Cluster:
    config = scope.config
    return Cluster(
        f"{scope.name}-cluster",
        ClusterArgs(
            names=scope.names,
            config=config.cluster_for_deployer,
            network=config.network,
            subscription_id=config.subscription_id,
            tenant_id=scope.tenant_id,
            resource_group_name=scope.resource_group_name,
            location=config.location,
            nodes_subnet_id=network.nodes_subnet_id,
            endpoints_subnet_id=network.endpoints_subnet_id,
            registry_dns_zone_id=network.dns_zone_ids.get("registry"),
            registry_id=registry.id,
            log_analytics_workspace_id=monitoring.log_analytics_workspace_id,
            deployer_object_id=scope.deployer_object_id,
            deployer_principal_type=scope.deployer_principal_type,
            admin_group_object_ids=config.access.admin_group_object_ids,
            tags=config.tags,
        ),
        opts=scope.child,
    )


def create_lake(
    scope: EnvironmentScope, network: Network, brand_lake_containers: Sequence[str]
) -> DataLake:
    config = scope.config
    return DataLake(
        f"{scope.name}-lake",
        DataLakeArgs(
            account_name=scope.names.storage_account,
            config=config.lake,
            resource_group_name=scope.resource_group_name,
            location=config.location,
            nodes_subnet_id=network.nodes_subnet_id,
            endpoints_subnet_id=network.endpoints_subnet_id,
            dns_zone_ids={
                group_id: network.dns_zone_ids[group_id]
                for group_id in ("blob", "dfs")
                if group_id in network.dns_zone_ids
            },
            event_containers=brand_lake_containers,
            tags=config.tags,
        ),
        opts=scope.child,
    )


def create_vault(scope: EnvironmentScope, network: Network) -> Vault:
    config = scope.config
    return Vault(
        f"{scope.name}-vault",
        VaultArgs(
            vault_name=scope.names.key_vault,
            config=config.vault,
            tenant_id=scope.tenant_id,
            resource_group_name=scope.resource_group_name,
            location=config.location,
            nodes_subnet_id=network.nodes_subnet_id,
            endpoints_subnet_id=network.endpoints_subnet_id,
            dns_zone_id=network.dns_zone_ids.get("vault"),
            tags=config.tags,
        ),
        opts=scope.child,
    )


def create_database(scope: EnvironmentScope, network: Network, vault: Vault) -> Database:
    config = scope.config
    return Database(
        f"{scope.name}-database",
        DatabaseArgs(
            server_name=scope.names.database_server,
            config=config.database,
            tenant_id=scope.tenant_id,
            resource_group_name=scope.resource_group_name,
            location=config.location,
            delegated_subnet_id=network.database_subnet_id,
            vnet_id=network.vnet_id,
            private_dns_zone_id=network.dns_zone_ids.get("postgres"),
            vault=vault,
            tags=config.tags,
        ),
        opts=scope.child,
    )


def create_mlflow(
    scope: EnvironmentScope,
    cluster: Cluster,
    lake: DataLake,
    vault: Vault,
    database: Database,
    registry: RegistryLocation,
) -> MlflowServer:
    config = scope.config
    return MlflowServer(
        f"{scope.name}-mlflow",
        MlflowServerArgs(
            names=scope.names,
            config=config.mlflow,
            image=f"{registry.login_server}/{config.images.mlflow}",
            subscription_id=config.subscription_id,
            tenant_id=scope.tenant_id,
            resource_group_name=scope.resource_group_name,
            location=config.location,
            oidc_issuer_url=cluster.oidc_issuer_url,
            storage_account_name=scope.names.storage_account,
            mlflow_container_id=lake.mlflow_container_id,
            vault=vault,
            high_availability=config.mlflow.replicas > 1,
            provider=cluster.provider,
            tags=config.tags,
        ),
        # The server's backend store must exist before it starts.
        opts=pulumi.ResourceOptions(parent=scope.parent, depends_on=[database]),
    )


def create_mlflow_access_policy(
    scope: EnvironmentScope, cluster: Cluster, mlflow: MlflowServer
) -> pulumi.Resource:
    """The NetworkPolicy of the brands' MLflow access Jobs, once the server is there."""
    return create_access_job_network_policy(
        f"{scope.name}-mlflow-access-network-policy",
        pulumi.ResourceOptions(parent=scope.parent, provider=cluster.provider, depends_on=[mlflow]),
    )


def create_ingress_edge(scope: EnvironmentScope, cluster: Cluster, vault: Vault) -> IngressEdge:
    return IngressEdge(
        f"{scope.name}-ingress",
        IngressEdgeArgs(
            config=scope.config.ingress,
            names=scope.names,
            subscription_id=scope.config.subscription_id,
            resource_group_name=scope.resource_group_name,
            cluster_name=cluster.cluster_name,
            key_vault_id=vault.vault_id,
            key_vault_uri=vault.vault_uri,
            provider=cluster.provider,
        ),
        opts=scope.child,
    )


def create_cluster_monitoring(
    scope: EnvironmentScope, monitoring: Monitoring, cluster: Cluster
) -> ClusterMonitoring:
    return ClusterMonitoring(
        f"{scope.name}-cluster-monitoring",
        ClusterMonitoringArgs(
            monitoring=monitoring,
            cluster_id=cluster.cluster_id,
            cluster_name=scope.names.cluster,
            resource_group_name=scope.resource_group_name,
            location=scope.config.location,
            rules_file=PLATFORM_RULES,
            tags=scope.config.tags,
            provider=cluster.provider,
        ),
        opts=scope.child,
    )


def create_dask_operator(scope: EnvironmentScope, cluster: Cluster) -> tuple[pulumi.Resource, ...]:
    """The operator's Helm release, which DaskClusters wait for; none when Dask is off."""
    if not scope.config.dask.enabled:
        return ()
    dask = DaskOperator(
        f"{scope.name}-dask",
        DaskOperatorArgs(
            chart_version=scope.config.dask.chart_version,
            provider=cluster.provider,
            node_pool=cluster.user_pool,
        ),
        opts=scope.child,
    )
    return (dask.release,)
