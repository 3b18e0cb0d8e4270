"""Policies for Key Vault (``azure-native:keyvault:Vault``): authorization, recovery, network."""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs, Severity

from policies.context import as_mapping, is_production, is_true, same_text
from policies.rule import Violations, resource_policy, setting

VAULT = "azure-native:keyvault:Vault"


@resource_policy(
    name="keyvault-rbac-authorization",
    description="Key Vaults use Azure RBAC, not access policies, so access is one role model.",
    resource_types=[VAULT],
    severity=Severity.HIGH,
)
def keyvault_rbac_authorization(args: ResourceValidationArgs, report: Violations) -> None:
    value = as_mapping(args.props.get("properties")).get("enableRbacAuthorization")
    if not is_true(value):
        report(f"{setting('properties.enableRbacAuthorization', value)}; set it to true")


@resource_policy(
    name="keyvault-soft-delete",
    description="Key Vaults keep deleted secrets recoverable (soft delete).",
    resource_types=[VAULT],
    severity=Severity.HIGH,
    benchmark="CKV_AZURE_42",
)
def keyvault_soft_delete(args: ResourceValidationArgs, report: Violations) -> None:
    # Azure turns soft delete on when the input is omitted; only an explicit false is unsafe.
    value = as_mapping(args.props.get("properties")).get("enableSoftDelete")
    if value is False:
        report("sets properties.enableSoftDelete=false; remove it or set it to true")


@resource_policy(
    name="keyvault-purge-protection",
    description="Key Vaults have purge protection, so a deleted secret cannot be destroyed early.",
    resource_types=[VAULT],
    severity=Severity.HIGH,
    benchmark="CKV_AZURE_110",
)
def keyvault_purge_protection(args: ResourceValidationArgs, report: Violations) -> None:
    value = as_mapping(args.props.get("properties")).get("enablePurgeProtection")
    if not is_true(value):
        report(f"{setting('properties.enablePurgeProtection', value)}; set it to true")


@resource_policy(
    name="keyvault-public-network-disabled-prod",
    description="A production Key Vault is reachable through private endpoints only.",
    resource_types=[VAULT],
    severity=Severity.HIGH,
    benchmark="CKV_AZURE_189",
)
def keyvault_public_network_disabled_prod(args: ResourceValidationArgs, report: Violations) -> None:
    if not is_production(args.get_config(), args.props):
        return
    value = as_mapping(args.props.get("properties")).get("publicNetworkAccess")
    if not same_text(value, "Disabled"):
        report(f"{setting('properties.publicNetworkAccess', value)} in prod; set it to Disabled")
