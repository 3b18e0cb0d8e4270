"""The AKS cluster, its user node pool, its pull access to the registry, its Kubernetes provider.

The cluster is Entra-only (local accounts off, Azure RBAC), runs workload identity
and the Key Vault CSI driver, and ships metrics to managed Prometheus. Because local
accounts are off, the admin kubeconfig is unavailable: the provider uses the *user*
kubeconfig, rewritten to call ``kubelogin`` non-interactively (``infra.cluster_kubeconfig``).

The provider is usable only once the deployer's AKS RBAC role has propagated (up to
five minutes; pulumi-kubernetes does not retry a 403) and the user pool, where every
recplat pod runs, exists; ``Cluster.access_ready`` is that moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumiverse_time as time
from pulumi_azure_native import authorization, containerservice

from infra import azure_roles
from infra.brand_names import NAMESPACE_COST_LABELS
from infra.cluster_kubeconfig import user_kubeconfig
from infra.config import ClusterConfig, NetworkConfig, NodePoolConfig
from infra.environment_names import EnvironmentNames
from infra.private_endpoint import PrivateEndpointArgs, private_endpoint

CSI_ROTATION_INTERVAL = "2m"
# AKS: "it can take up to five minutes for role assignments to propagate" (Azure RBAC for
# Kubernetes authorization); pulumi-kubernetes fails on the first 403 instead of retrying.
RBAC_PROPAGATION = "5m"


def ksm_namespace_labels_allowlist(label_keys: tuple[str, ...] = NAMESPACE_COST_LABELS) -> str:
    """kube-state-metrics' ``--metric-labels-allowlist`` value for namespace labels.

    KSM matches the label keys exactly as they are on the object, then exposes each on
    ``kube_namespace_labels`` as ``label_<key>`` with every character outside
    ``[a-zA-Z0-9_]`` replaced by ``_`` (``recplat.io/cost-center`` ->
    ``label_recplat_io_cost_center``); see ``ksm_label_name``.
    """
    return f"namespaces=[{','.join(label_keys)}]"


def ksm_label_name(label_key: str) -> str:
    """The Prometheus label kube-state-metrics gives Kubernetes label ``label_key``."""
    return "label_" + "".join(char if char.isalnum() or char == "_" else "_" for char in label_key)


@dataclass(frozen=True)
class ClusterArgs:
    """Inputs of ``Cluster``."""

    names: EnvironmentNames
    config: ClusterConfig
    network: NetworkConfig
    subscription_id: str
    tenant_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    location: str
    nodes_subnet_id: pulumi.Input[str]
    endpoints_subnet_id: pulumi.Input[str]
    registry_dns_zone_id: pulumi.Input[str] | None
    """Set when private endpoints are on: the registry is then reachable only privately."""
    registry_id: pulumi.Input[str]
    """The ACR of the registry project (``infra/registry.py``), deployed before this stack so
    its images exist before any workload pulls them; the cluster only gets pull access."""
    log_analytics_workspace_id: pulumi.Input[str]
    deployer_object_id: pulumi.Input[str]
    deployer_principal_type: str
    admin_group_object_ids: list[str]
    tags: dict[str, str]


class Cluster(pulumi.ComponentResource):
    """AKS with a system pool, an autoscaling user pool, ACR and a kubelogin-based provider."""

    cluster_name: pulumi.Output[str]
    cluster_id: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    user_pool: containerservice.AgentPool
    """Where every recplat pod runs (the system pool is tainted CriticalAddonsOnly)."""
    access_ready: time.Sleep
    """Passed once the deployer's cluster-admin role has had time to propagate."""

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:cluster:Cluster", name, None, opts)
        cluster = self._managed_cluster(name, args)
        user_pool = self._user_pool(name, args, cluster)
        self._maintenance_window(name, args, cluster)
        kubelet_pull = self._registry_access(name, args, cluster)
        deployer_admin = self._cluster_admins(name, args, cluster)

        self.kubeconfig = user_kubeconfig(
            args.resource_group_name, cluster.name, args.tenant_id, args.config.kubelogin_mode
        )
        # A new role assignment is not honoured at once, and pulumi-kubernetes does not retry
        # a 403: wait out the propagation before the first in-cluster call. A re-created
        # assignment (new id) waits again; later runs do not.
        access_ready = time.Sleep(
            f"{name}-rbac-propagation",
            create_duration=RBAC_PROPAGATION,
            triggers={"deployerAssignment": deployer_admin.id},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[deployer_admin, kubelet_pull]),
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            delete_unreachable=False,
            # Every pod recplat creates runs on the user pool and pulls from the registry.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access_ready, user_pool]),
        )
        self.user_pool = user_pool
        self.access_ready = access_ready

        self.cluster_name = cluster.name
        self.cluster_id = cluster.id
        self.oidc_issuer_url = cluster.oidc_issuer_profile.apply(
            lambda profile: (profile.issuer_url if profile else None) or ""
        )
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "oidcIssuerUrl": self.oidc_issuer_url,
            }
        )

    def _managed_cluster(self, name: str, args: ClusterArgs) -> containerservice.ManagedCluster:
        """The cluster: Entra-only, workload identity, CSI secrets, managed Prometheus."""
        config, names = args.config, args.names
        return containerservice.ManagedCluster(
            f"{name}-aks",
            resource_name_=names.cluster,
            resource_group_name=args.resource_group_name,
            location=args.location,
            dns_prefix=names.cluster_dns_prefix,
            kubernetes_version=config.kubernetes_version,
            sku=containerservice.ManagedClusterSKUArgs(name="Base", tier=config.tier),
            identity=containerservice.ManagedClusterIdentityArgs(
                type=containerservice.ResourceIdentityType.SYSTEM_ASSIGNED
            ),
            enable_rbac=True,
            disable_local_accounts=True,
            aad_profile=containerservice.ManagedClusterAADProfileArgs(
                managed=True,
                enable_azure_rbac=True,
                tenant_id=args.tenant_id,
                admin_group_object_ids=args.admin_group_object_ids,
            ),
            api_server_access_profile=containerservice.ManagedClusterAPIServerAccessProfileArgs(
                authorized_ip_ranges=config.api_server_authorized_ip_ranges,
            ),
            # The system pool must exist at creation; the user pool is a separate AgentPool
            # so resizing it never touches (or replaces) the cluster resource.
            agent_pool_profiles=[_system_pool(args)],
            network_profile=_network_profile(args.network),
            oidc_issuer_profile=containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=containerservice.ManagedClusterSecurityProfileArgs(
                workload_identity=containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(
                    enabled=True
                ),
                image_cleaner=containerservice.ManagedClusterSecurityProfileImageCleanerArgs(
                    enabled=True, interval_hours=48
                ),
            ),
            auto_upgrade_profile=containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=str(config.upgrade_channel),
                node_os_upgrade_channel="NodeImage",
            ),
            addon_profiles=_addon_profiles(args.log_analytics_workspace_id),
            azure_monitor_profile=containerservice.ManagedClusterAzureMonitorProfileArgs(
                metrics=containerservice.ManagedClusterAzureMonitorProfileMetricsArgs(
                    enabled=True,
                    kube_state_metrics=containerservice.ManagedClusterAzureMonitorProfileKubeStateMetricsArgs(
                        metric_labels_allowlist=ksm_namespace_labels_allowlist(),
                    ),
                )
            ),
            ingress_profile=_ingress_profile(),
            node_resource_group=f"{names.resource_group}-nodes",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _user_pool(
        self, name: str, args: ClusterArgs, cluster: containerservice.ManagedCluster
    ) -> containerservice.AgentPool:
        pool = args.config.user_pool
        return containerservice.AgentPool(
            f"{name}-user-pool",
            agent_pool_name="user",
            resource_name_=cluster.name,
            resource_group_name=args.resource_group_name,
            mode="User",
            **_pool_settings(pool, args),
            upgrade_settings=containerservice.AgentPoolUpgradeSettingsArgs(max_surge="33%"),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _maintenance_window(
        self, name: str, args: ClusterArgs, cluster: containerservice.ManagedCluster
    ) -> None:
        window = args.config.maintenance_window
        containerservice.MaintenanceConfiguration(
            f"{name}-maintenance",
            # This exact name makes it the window for the auto-upgrade channel.
            config_name="aksManagedAutoUpgradeSchedule",
            resource_name_=cluster.name,
            resource_group_name=args.resource_group_name,
            maintenance_window=containerservice.MaintenanceWindowArgs(
                schedule=containerservice.ScheduleArgs(
                    weekly=containerservice.WeeklyScheduleArgs(
                        day_of_week=window.day_of_week, interval_weeks=1
                    )
                ),
                duration_hours=window.duration_hours,
                start_time=window.start_time,
                utc_offset=window.utc_offset,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _registry_access(
        self, name: str, args: ClusterArgs, cluster: containerservice.ManagedCluster
    ) -> authorization.RoleAssignment:
        """The kubelet's AcrPull on the registry, and the registry's private endpoint when
        private endpoints are on; returns the role assignment."""
        if args.registry_dns_zone_id is not None:
            private_endpoint(
                f"{name}-acr-pe",
                f"pe-{args.names.registry}",
                PrivateEndpointArgs(
                    resource_group_name=args.resource_group_name,
                    location=args.location,
                    subnet_id=args.endpoints_subnet_id,
                    service_id=args.registry_id,
                    group_id="registry",
                    dns_zone_id=args.registry_dns_zone_id,
                    tags=args.tags,
                ),
                parent=self,
            )
        kubelet_object_id = cluster.identity_profile.apply(
            lambda profile: (profile or {})["kubeletidentity"].object_id or ""
        )
        return azure_roles.assign_role(
            f"{name}-kubelet-acrpull",
            subscription_id=args.subscription_id,
            role=azure_roles.ACR_PULL,
            principal_id=kubelet_object_id,
            principal_type="ServicePrincipal",
            scope=args.registry_id,
            parent=self,
        )

    def _cluster_admins(
        self, name: str, args: ClusterArgs, cluster: containerservice.ManagedCluster
    ) -> authorization.RoleAssignment:
        """AKS RBAC Cluster Admin for the deployer and the admin groups; returns the deployer's."""
        # Whoever runs `pulumi up` must reach the API server to create in-cluster objects.
        deployer_admin = azure_roles.assign_role(
            f"{name}-deployer-admin",
            subscription_id=args.subscription_id,
            role=azure_roles.AKS_RBAC_CLUSTER_ADMIN,
            principal_id=args.deployer_object_id,
            principal_type=args.deployer_principal_type,
            scope=cluster.id,
            parent=self,
        )
        for index, group in enumerate(args.admin_group_object_ids):
            azure_roles.assign_role(
                f"{name}-admin-group-{index}",
                subscription_id=args.subscription_id,
                role=azure_roles.AKS_RBAC_CLUSTER_ADMIN,
                principal_id=group,
                principal_type="Group",
                scope=cluster.id,
                parent=self,
            )
        return deployer_admin


def _system_pool(args: ClusterArgs) -> containerservice.ManagedClusterAgentPoolProfileArgs:
    """The system pool: AKS's own add-ons only (tainted CriticalAddonsOnly)."""
    pool = args.config.system_pool
    return containerservice.ManagedClusterAgentPoolProfileArgs(
        name="system",
        mode="System",
        **_pool_settings(pool, args),
        node_taints=["CriticalAddonsOnly=true:NoSchedule"],
        upgrade_settings=containerservice.AgentPoolUpgradeSettingsArgs(max_surge="33%"),
    )


def _pool_settings(pool: NodePoolConfig, args: ClusterArgs) -> dict[str, Any]:
    """What the system and user pools share: Azure Linux nodes of the pool's size on the
    nodes subnet, autoscaled across the environment's zones, with no public IPs."""
    return {
        "vm_size": pool.vm_size,
        "os_type": "Linux",
        "os_sku": "AzureLinux",
        "os_disk_size_gb": pool.os_disk_size_gb,
        "enable_auto_scaling": True,
        "count": pool.min_count,
        "min_count": pool.min_count,
        "max_count": pool.max_count,
        "availability_zones": args.config.zones or None,
        "vnet_subnet_id": args.nodes_subnet_id,
        "enable_node_public_ip": False,
    }


def _network_profile(
    network: NetworkConfig,
) -> containerservice.ContainerServiceNetworkProfileArgs:
    """Azure CNI overlay with Cilium, which also enforces the NetworkPolicies."""
    return containerservice.ContainerServiceNetworkProfileArgs(
        network_plugin="azure",
        network_plugin_mode="overlay",
        network_dataplane="cilium",
        network_policy="cilium",
        pod_cidr=network.pod_cidr,
        service_cidr=network.service_cidr,
        dns_service_ip=network.dns_service_ip,
        load_balancer_sku="standard",
        outbound_type="loadBalancer",
    )


def _addon_profiles(
    log_analytics_workspace_id: pulumi.Input[str],
) -> dict[str, containerservice.ManagedClusterAddonProfileArgs]:
    """Azure Policy, the Key Vault CSI driver (rotating) and Container Insights."""
    return {
        "azurepolicy": containerservice.ManagedClusterAddonProfileArgs(enabled=True),
        "azureKeyvaultSecretsProvider": containerservice.ManagedClusterAddonProfileArgs(
            enabled=True,
            config={
                "enableSecretRotation": "true",
                "rotationPollInterval": CSI_ROTATION_INTERVAL,
            },
        ),
        "omsagent": containerservice.ManagedClusterAddonProfileArgs(
            enabled=True,
            config={
                "logAnalyticsWorkspaceResourceID": log_analytics_workspace_id,
                "useAADAuth": "true",
            },
        ),
    }


def _ingress_profile() -> containerservice.ManagedClusterIngressProfileArgs:
    """The application routing add-on: a managed NGINX ingress that brands route through
    (infra/ingress_edge.py). Its default controller is public unless told otherwise;
    recplat routes nothing through it, so it gets no load balancer at all."""
    return containerservice.ManagedClusterIngressProfileArgs(
        web_app_routing=containerservice.ManagedClusterIngressProfileWebAppRoutingArgs(
            enabled=True,
            nginx=containerservice.ManagedClusterIngressProfileNginxArgs(
                default_ingress_controller_type=containerservice.NginxIngressControllerType.NONE
            ),
        )
    )
