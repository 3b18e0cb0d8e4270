"""The environment: every shared resource of one stack, wired in dependency order.

Resource group -> network -> monitoring -> cluster (+ pull access to the registry, provider)
-> lake, vault -> database -> MLflow server -> HTTPS ingress edge -> cluster monitoring -> Dask
operator. The registry is not here: the registry project (``registry/``) creates it, and the
images are put in it, before this stack runs (``infra/registry.py``). The
result is one ``BrandPlatform``, the only thing brand stacks see of the environment.

Each component is declared in ``infra.environment_components``; ``Environment`` wires them
in that order and hands the brands their ``BrandPlatform``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, resources

from infra.brand_inputs import BrandImages, BrandPlatform
from infra.cluster import Cluster
from infra.dashboards.brand_dashboard import BrandDashboardArgs
from infra.datalake import DataLake
from infra.environment_components import (
    EnvironmentScope,
    create_cluster,
    create_cluster_monitoring,
    create_dask_operator,
    create_database,
    create_ingress_edge,
    create_lake,
    create_mlflow,
    create_mlflow_access_policy,
    create_monitoring,
    create_network,
    create_vault,
)
from infra.environment_names import environment_names
from infra.ingress_edge import IngressEdge
from infra.mlflow_server import NAMESPACE as MLFLOW_NAMESPACE
from infra.mlflow_server import PORT as MLFLOW_PORT
from infra.mlflow_server import MlflowServer
from infra.monitoring import Monitoring
from infra.registry import RegistryLocation, registry_location
from infra.stack_config import StackConfig
from infra.vault import Vault

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
        client = authorization.get_client_config_output()
        group = resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=names.resource_group,
            location=config.location,
            tags=config.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        scope = EnvironmentScope(
            name, config, names, group.name, client.tenant_id, client.object_id, self
        )
        network = create_network(scope)
        monitoring = create_monitoring(scope, args.dashboard_brands)
        # Created by the registry project before this stack, with the images in it.
        registry = registry_location(config.subscription_id, config.stack)
        cluster = create_cluster(scope, network, monitoring, registry)
        lake = create_lake(scope, network, args.brand_lake_containers)
        vault = create_vault(scope, network)
        database = create_database(scope, network, vault)
        mlflow = create_mlflow(scope, cluster, lake, vault, database, registry)
        access_jobs_policy = create_mlflow_access_policy(scope, cluster, mlflow)
        edge = create_ingress_edge(scope, cluster, vault)
        create_cluster_monitoring(scope, monitoring, cluster)
        self.platform = _brand_platform(
            scope,
            registry=registry,
            monitoring=monitoring,
            cluster=cluster,
            lake=lake,
            vault=vault,
            mlflow=mlflow,
            mlflow_access_ready=(mlflow, access_jobs_policy),
            edge=edge,
            dask_operator=create_dask_operator(scope, cluster),
        )
        self.mlflow = mlflow
        self.resource_group_name = group.name
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


def _brand_platform(
    scope: EnvironmentScope,
    *,
    registry: RegistryLocation,
    monitoring: Monitoring,
    cluster: Cluster,
    lake: DataLake,
    vault: Vault,
    mlflow: MlflowServer,
    mlflow_access_ready: tuple[pulumi.Resource, ...],
    edge: IngressEdge,
    dask_operator: tuple[pulumi.Resource, ...],
) -> BrandPlatform:
    """What the brand stacks see of the environment, and nothing more."""
    config = scope.config
    return BrandPlatform(
        environment=config.stack,
        subscription_id=config.subscription_id,
        location=config.location,
        resource_group_name=scope.resource_group_name,
        tags=config.tags,
        tenant_id=scope.tenant_id,
        storage_account_name=lake.account_name,
        storage_account_id=lake.account_id,
        key_vault_name=vault.vault_name,
        key_vault_id=vault.vault_id,
        oidc_issuer_url=cluster.oidc_issuer_url,
        acr_login_server=registry.login_server,
        images=BrandImages(
            service=f"{registry.login_server}/{config.images.service}",
            training=f"{registry.login_server}/{config.images.training}",
        ),
        mlflow_tracking_uri=mlflow.tracking_uri,
        mlflow_identity_principal_id=mlflow.identity_principal_id,
        mlflow_identity_client_id=mlflow.identity_client_id,
        mlflow_image=mlflow.image,
        mlflow_access_ready=mlflow_access_ready,
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
        if config.network.private_endpoints
        else (),
    )
