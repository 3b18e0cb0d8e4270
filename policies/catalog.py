"""The recplat policy catalog: every policy of the pack, in the order the README lists them."""

from __future__ import annotations

from pulumi_policy import Policy

from policies import aks, identity, ingress, keyvault, postgres, stack, storage, tags, workloads
from policies.rule import RecplatResourcePolicy, RecplatStackPolicy

RESOURCE_POLICIES: tuple[RecplatResourcePolicy, ...] = (
    aks.aks_entra_azure_rbac,
    aks.aks_local_accounts_disabled,
    aks.aks_workload_identity,
    aks.aks_network_policy,
    aks.aks_no_node_public_ip,
    aks.aks_azure_policy_addon,
    aks.aks_container_insights,
    aks.aks_managed_prometheus,
    aks.aks_keyvault_csi_rotation,
    aks.aks_no_dashboard,
    aks.aks_upgrade_channel,
    aks.aks_standard_tier_prod,
    aks.aks_api_server_restricted,
    aks.aks_kubernetes_version_supported,
    storage.storage_tls12,
    storage.storage_https_only,
    storage.storage_no_public_blob,
    storage.storage_shared_key_disabled,
    storage.storage_network_deny_default,
    storage.storage_public_network_disabled_prod,
    storage.storage_hns_enabled,
    storage.storage_blob_soft_delete,
    storage.storage_container_private,
    keyvault.keyvault_rbac_authorization,
    keyvault.keyvault_soft_delete,
    keyvault.keyvault_purge_protection,
    keyvault.keyvault_public_network_disabled_prod,
    postgres.postgres_no_open_firewall,
    postgres.postgres_private_access_prod,
    postgres.postgres_entra_auth,
    postgres.postgres_ha_prod,
    postgres.postgres_geo_backup_prod,
    postgres.postgres_tls_required,
    identity.role_assignment_principal_type,
    identity.role_assignment_no_privileged_role,
    identity.role_assignment_brand_scope,
    identity.acr_no_admin_or_anonymous,
    tags.tags_platform,
    tags.tags_brand,
    tags.k8s_brand_namespace_labels,
    workloads.k8s_run_as_non_root,
    workloads.k8s_no_privilege_escalation,
    workloads.k8s_drop_all_capabilities,
    workloads.k8s_read_only_root_fs,
    workloads.k8s_seccomp_runtime_default,
    workloads.k8s_resources,
    workloads.k8s_deployment_probes,
    workloads.k8s_image_pinned,
    workloads.k8s_no_host_namespaces,
    workloads.k8s_no_host_path,
    workloads.k8s_not_default_namespace,
    workloads.k8s_dedicated_service_account,
    ingress.k8s_ingress_tls,
)

STACK_POLICIES: tuple[RecplatStackPolicy, ...] = (
    stack.brand_namespace_default_deny,
    stack.deployment_has_pdb,
    stack.deployment_has_hpa,
    stack.k8s_image_from_environment_acr,
)

ALL_POLICIES: tuple[Policy, ...] = (*RESOURCE_POLICIES, *STACK_POLICIES)
POLICY_NAMES = frozenset(policy.name for policy in ALL_POLICIES)
