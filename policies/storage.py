"""Policies for the ADLS Gen2 lake (``azure-native:storage``): transport, access, recovery."""

from __future__ import annotations

from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from policies.context import as_mapping, is_production, is_true, lookup, same_text
from policies.rule import Violations, resource_policy, setting

STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_CONTAINER = "azure-native:storage:BlobContainer"
BLOB_SERVICE_PROPERTIES = "azure-native:storage:BlobServiceProperties"

MIN_SOFT_DELETE_DAYS = 7


@resource_policy(
    name="storage-tls12",
    description="Storage accounts accept TLS 1.2 or newer only.",
    resource_types=[STORAGE_ACCOUNT],
    severity=Severity.HIGH,
    benchmark="CKV_AZURE_44",
)
def storage_tls12(args: ResourceValidationArgs, report: Violations) -> None:
    value = lookup(args.props, "minimumTlsVersion")
    if not (same_text(value, "TLS1_2") or same_text(value, "TLS1_3")):
        report(f"{setting('minimumTlsVersion', value)}; set it to TLS1_2")


@resource_policy(
    name="storage-https-only",
    description="Storage accounts refuse plain HTTP.",
    resource_types=[STORAGE_ACCOUNT],
    severity=Severity.HIGH,
    benchmark="CKV_AZURE_3",
)
def storage_https_only(args: ResourceValidationArgs, report: Violations) -> None:
    value = lookup(args.props, "enableHttpsTrafficOnly")
    if not is_true(value):
        report(f"{setting('enableHttpsTrafficOnly', value)}; set it to true")


@resource_policy(
    name="storage-no-public-blob",
    description="Storage accounts forbid anonymous (public) blob access.",
    resource_types=[STORAGE_ACCOUNT],
    severity=Severity.CRITICAL,
    benchmark="CKV_AZURE_190",
)
def storage_no_public_blob(args: ResourceValidationArgs, report: Violations) -> None:
    value = lookup(args.props, "allowBlobPublicAccess")
    if value is not False:
        report(f"{setting('allowBlobPublicAccess', value)}; set it to false")


@resource_policy(
    name="storage-shared-key-disabled",
    description="Storage accounts refuse account keys and SAS signed with them; use Entra ID.",
    resource_types=[STORAGE_ACCOUNT],
    severity=Severity.HIGH,
    benchmark="CKV2_AZURE_40",
)
def storage_shared_key_disabled(args: ResourceValidationArgs, report: Violations) -> None:
    value = lookup(args.props, "allowSharedKeyAccess")
    if value is not False:
        report(f"{setting('allowSharedKeyAccess', value)}; set it to false")


@resource_policy(
    name="storage-network-deny-default",
    description="Storage account network rules deny by default.",
    resource_types=[STORAGE_ACCOUNT],
    severity=Severity.HIGH,
    benchmark="CKV_AZURE_35",
)
def storage_network_deny_default(args: ResourceValidationArgs, report: Violations) -> None:
    value = lookup(args.props, "networkRuleSet.defaultAction")
    if not same_text(value, "Deny"):
        report(f"{setting('networkRuleSet.defaultAction', value)}; set it to Deny")


@resource_policy(
    name="storage-public-network-disabled-prod",
    description="A production storage account is reachable through private endpoints only.",
    resource_types=[STORAGE_ACCOUNT],
    severity=Severity.HIGH,
    benchmark="CKV_AZURE_59",
)
def storage_public_network_disabled_prod(args: ResourceValidationArgs, report: Violations) -> None:
    if not is_production(args.get_config(), args.props):
        return
    value = lookup(args.props, "publicNetworkAccess")
    if not same_text(value, "Disabled"):
        report(f"{setting('publicNetworkAccess', value)} in prod; set it to Disabled")


@resource_policy(
    name="storage-hns-enabled",
    description="The lake account has the hierarchical namespace (ADLS Gen2) enabled.",
    resource_types=[STORAGE_ACCOUNT],
    severity=Severity.MEDIUM,
)
def storage_hns_enabled(args: ResourceValidationArgs, report: Violations) -> None:
    value = lookup(args.props, "isHnsEnabled")
    if not is_true(value):
        report(f"{setting('isHnsEnabled', value)}; set it to true (the lake is ADLS Gen2)")


def _retention_problem(props: Any, path: str) -> str | None:
    policy = as_mapping(lookup(props, path))
    if not is_true(policy.get("enabled")):
        return f"{setting(path + '.enabled', policy.get('enabled'))}; set it to true"
    days = policy.get("days")
    if not isinstance(days, int | float) or days < MIN_SOFT_DELETE_DAYS:
        return (
            f"{setting(path + '.days', days)}; keep deleted data at least "
            f"{MIN_SOFT_DELETE_DAYS} days"
        )
    return None


@resource_policy(
    name="storage-blob-soft-delete",
    description=f"Deleted blobs and containers stay recoverable for {MIN_SOFT_DELETE_DAYS}+ days.",
    resource_types=[BLOB_SERVICE_PROPERTIES],
    severity=Severity.MEDIUM,
    benchmark="CKV2_AZURE_38",
)
def storage_blob_soft_delete(args: ResourceValidationArgs, report: Violations) -> None:
    for path in ("deleteRetentionPolicy", "containerDeleteRetentionPolicy"):
        problem = _retention_problem(args.props, path)
        if problem:
            report(problem)


@resource_policy(
    name="storage-container-private",
    description="Blob containers allow no anonymous access.",
    resource_types=[BLOB_CONTAINER],
    severity=Severity.CRITICAL,
    benchmark="CKV_AZURE_34",
)
def storage_container_private(args: ResourceValidationArgs, report: Violations) -> None:
    value = lookup(args.props, "publicAccess")
    if value is not None and not same_text(value, "None"):
        report(f"{setting('publicAccess', value)}; set it to None")
