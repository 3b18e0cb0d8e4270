"""The environment: every shared resource of one stack, wired in dependency order.

Resource group -> network -> monitoring -> cluster (+ pull access to the registry, provider)
-> lake, vault -> database -> MLflow server -> HTTPS ingress edge -> cluster monitoring -> Dask
operator. The registry is not here: the registry project (``registry/``) creates it, and the
images are put in it, before this stack runs (``infra/registry.py``). The
result is one ``BrandPlatform``, the only thing brand stacks see of the environment.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, resources

from infra.brand_inputs import BrandImages, BrandPlatform
from infra.cluster import Cluster, ClusterArgs
from infra.config import IngressExposure, StackConfig
from infra.dashboards.brand_dashboard import BrandDashboardArgs
from infra.dask_operator import DaskOperator, DaskOperatorArgs
from infra.database import Database, DatabaseArgs
from infra.datalake import DataLake, DataLakeArgs
from infra.environment_names import environment_names
from infra.ingress_edge import IngressEdge, IngressEdgeArgs
from infra.mlflow_access import create_access_job_network_policy
from infra.mlflow_server import NAMESPACE as MLFLOW_NAMESPACE
from infra.mlflow_server import PORT as MLFLOW_PORT
from infra.mlflow_server import MlflowServer, MlflowServerArgs
from infra.monitoring import (
    PLATFORM_RULES,
    ClusterMonitoring,
    ClusterMonitoringArgs,
    Monitoring,
    MonitoringArgs,
)
from infra.network import Network, NetworkArgs
from infra.registry import registry_location
from infra.vault import Vault, VaultArgs

# The AKS application routing add-on runs every NGINX controller it manages here.
INGRESS_NAMESPACE = "app-routing-system"


@dataclass(frozen=True)
class EnvironmentArgs:
    """Inputs of ``Environment``: the validated stack config and the stack's brand containers."""

    config: StackConfig
    brand_lake_containers: Sequence[str] = ()
    dashboard_brands: Sequence[BrandDashboardArgs] = ()
    """The stack's brands as the platform dashboard shows them."""


class Environment(pulumi.ComponentResource):
    """One stack's shared platform; ``platform`` is what every BrandStack builds on."""

    platform: BrandPlatform
    kubeconfig: pulumi.Output[str]
    grafana_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: EnvironmentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:environment:Environment", name, None, opts)
        config = args.config
        names = environment_names(config.subscription_id, config.stack)
        tags = config.tags
        location = config.location
        child = pulumi.ResourceOptions(parent=self)
        client = authorization.get_client_config_output()
        private = config.network.private_endpoints

        group = resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=names.resource_group,
            location=location,
            tags=tags,
            opts=child,
        )
        rg = group.name
        network = Network(
            f"{name}-network",
            NetworkArgs(
                resource_group_name=rg,
                location=location,
                vnet_name=names.virtual_network,
                address_space=config.network.address_space,
                nodes_subnet=config.network.nodes_subnet,
                endpoints_subnet=config.network.endpoints_subnet,
                database_subnet=config.network.database_subnet,
                private_endpoints=private,
                database_dns_zone=f"{names.database_server}.private.postgres.database.azure.com",
                public_ingress=config.ingress.exposure is IngressExposure.PUBLIC,
                tags=tags,
            ),
            opts=child,
        )
        monitoring = Monitoring(
            f"{name}-monitoring",
            MonitoringArgs(
                names=names,
                config=config.monitoring,
                subscription_id=config.subscription_id,
                resource_group_name=rg,
                location=location,
                admin_group_object_ids=config.access.admin_group_object_ids,
                deployer_object_id=client.object_id,
                deployer_principal_type=str(config.access.deployer_principal_type),
                tags=tags,
                dashboard_brands=args.dashboard_brands,
            ),
            opts=child,
        )
        # Created by the registry project before this stack, with the images in it.
        registry = registry_location(config.subscription_id, config.stack)
        cluster = Cluster(
            f"{name}-cluster",
            ClusterArgs(
                names=names,
                config=config.cluster_for_deployer,
                network=config.network,
                subscription_id=config.subscription_id,
                tenant_id=client.tenant_id,
                resource_group_name=rg,
                location=location,
                nodes_subnet_id=network.nodes_subnet_id,
                endpoints_subnet_id=network.endpoints_subnet_id,
                registry_dns_zone_id=network.dns_zone_ids.get("registry"),
                registry_id=registry.id,
                log_analytics_workspace_id=monitoring.log_analytics_workspace_id,
                deployer_object_id=client.object_id,
                deployer_principal_type=str(config.access.deployer_principal_type),
                admin_group_object_ids=config.access.admin_group_object_ids,
                tags=tags,
            ),
            opts=child,
        )
        lake = DataLake(
            f"{name}-lake",
            DataLakeArgs(
                account_name=names.storage_account,
                config=config.lake,
                resource_group_name=rg,
                location=location,
                nodes_subnet_id=network.nodes_subnet_id,
                endpoints_subnet_id=network.endpoints_subnet_id,
                dns_zone_ids={
                    group_id: network.dns_zone_ids[group_id]
                    for group_id in ("blob", "dfs")
                    if group_id in network.dns_zone_ids
                },
                event_containers=args.brand_lake_containers,
                tags=tags,
            ),
            opts=child,
        )
        vault = Vault(
            f"{name}-vault",
            VaultArgs(
                vault_name=names.key_vault,
                config=config.vault,
                tenant_id=client.tenant_id,
                resource_group_name=rg,
                location=location,
                nodes_subnet_id=network.nodes_subnet_id,
                endpoints_subnet_id=network.endpoints_subnet_id,
                dns_zone_id=network.dns_zone_ids.get("vault"),
                tags=tags,
            ),
            opts=child,
        )
        database = Database(
            f"{name}-database",
            DatabaseArgs(
                server_name=names.database_server,
                config=config.database,
                tenant_id=client.tenant_id,
                resource_group_name=rg,
                location=location,
                delegated_subnet_id=network.database_subnet_id,
                vnet_id=network.vnet_id,
                private_dns_zone_id=network.dns_zone_ids.get("postgres"),
                vault=vault,
                tags=tags,
            ),
            opts=child,
        )
        registry_host = registry.login_server
        mlflow = MlflowServer(
            f"{name}-mlflow",
            MlflowServerArgs(
                names=names,
                config=config.mlflow,
                image=f"{registry_host}/{config.images.mlflow}",
                subscription_id=config.subscription_id,
                tenant_id=client.tenant_id,
                resource_group_name=rg,
                location=location,
                oidc_issuer_url=cluster.oidc_issuer_url,
                storage_account_name=names.storage_account,
                mlflow_container_id=lake.mlflow_container_id,
                vault=vault,
                high_availability=config.mlflow.replicas > 1,
                provider=cluster.provider,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[database]),
        )
        access_jobs_policy = create_access_job_network_policy(
            f"{name}-mlflow-access-network-policy",
            pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[mlflow]),
        )
        edge = IngressEdge(
            f"{name}-ingress",
            IngressEdgeArgs(
                config=config.ingress,
                names=names,
                subscription_id=config.subscription_id,
                resource_group_name=rg,
                cluster_name=cluster.cluster_name,
                key_vault_id=vault.vault_id,
                key_vault_uri=vault.vault_uri,
                provider=cluster.provider,
            ),
            opts=child,
        )
        ClusterMonitoring(
            f"{name}-cluster-monitoring",
            ClusterMonitoringArgs(
                monitoring=monitoring,
                cluster_id=cluster.cluster_id,
                cluster_name=names.cluster,
                resource_group_name=rg,
                location=location,
                rules_file=PLATFORM_RULES,
                tags=tags,
                provider=cluster.provider,
            ),
            opts=child,
        )
        dask_operator: tuple[pulumi.Resource, ...] = ()
        if config.dask.enabled:
            dask = DaskOperator(
                f"{name}-dask",
                DaskOperatorArgs(
                    chart_version=config.dask.chart_version,
                    provider=cluster.provider,
                    node_pool=cluster.user_pool,
                ),
                opts=child,
            )
            dask_operator = (dask.release,)

        self.platform = BrandPlatform(
            environment=config.stack,
            subscription_id=config.subscription_id,
            location=location,
            resource_group_name=rg,
            tags=tags,
            tenant_id=client.tenant_id,
            storage_account_name=lake.account_name,
            storage_account_id=lake.account_id,
            key_vault_name=vault.vault_name,
            key_vault_id=vault.vault_id,
            oidc_issuer_url=cluster.oidc_issuer_url,
            acr_login_server=registry_host,
            images=BrandImages(
                service=f"{registry_host}/{config.images.service}",
                training=f"{registry_host}/{config.images.training}",
            ),
            mlflow_tracking_uri=mlflow.tracking_uri,
            mlflow_identity_principal_id=mlflow.identity_principal_id,
            mlflow_identity_client_id=mlflow.identity_client_id,
            mlflow_image=mlflow.image,
            mlflow_access_ready=(mlflow, access_jobs_policy),
            mlflow_namespace=MLFLOW_NAMESPACE,
            ingress_namespace=INGRESS_NAMESPACE,
            ingress_class_name=edge.ingress_class_name,
            ingress_host=edge.host,
            ingress_certificate_uri=edge.certificate_uri,
            azure_monitor_workspace_id=monitoring.monitor_workspace_id,
            action_group_id=monitoring.action_group_id,
            cluster_name=cluster.cluster_name,
            k8s_provider=cluster.provider,
            dask_enabled=config.dask.enabled,
            dask_operator=dask_operator,
            mlflow_port=MLFLOW_PORT,
            private_endpoint_cidrs=(str(ipaddress.ip_network(config.network.endpoints_subnet)),)
            if private
            else (),
        )
        self.mlflow = mlflow
        self.resource_group_name = rg
        self.cluster_name = cluster.cluster_name
        self.oidc_issuer_url = cluster.oidc_issuer_url
        self.lake_account_name = lake.account_name
        self.kubeconfig = cluster.kubeconfig
        self.grafana_url = monitoring.grafana_url
        self.register_outputs(
            {
                "resourceGroupName": self.resource_group_name,
                "clusterName": self.cluster_name,
                "oidcIssuerUrl": self.oidc_issuer_url,
                "lakeAccountName": self.lake_account_name,
                "mlflowTrackingUri": mlflow.tracking_uri,
                "grafanaUrl": self.grafana_url,
            }
        )
