"""Policies for the MLflow backend store, PostgreSQL Flexible Server.

In pulumi-azure-native v3 the flexible server is ``azure-native:dbforpostgresql:Server``
(the retired single server became ``SingleServer``).
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs, Severity

from policies.context import is_production, lookup, same_text
from policies.rule import Violations, resource_policy, setting

SERVER = "azure-native:dbforpostgresql:Server"
FIREWALL_RULE = "azure-native:dbforpostgresql:FirewallRule"


@resource_policy(
    name="postgres-no-open-firewall",
    description="No PostgreSQL firewall rule opens the server to the internet or to all of Azure.",
    resource_types=[FIREWALL_RULE],
    severity=Severity.CRITICAL,
)
def postgres_no_open_firewall(args: ResourceValidationArgs, report: Violations) -> None:
    start = args.props.get("startIpAddress")
    end = args.props.get("endIpAddress")
    fix = "use private access (a delegated subnet) or a rule for the exact client range"
    if start == "0.0.0.0" and end == "255.255.255.255":  # noqa: S104 - the range we forbid
        report(f"allows 0.0.0.0-255.255.255.255; {fix}")
    elif start == "0.0.0.0" and end == "0.0.0.0":  # noqa: S104 - the rule we forbid
        # Azure's "allow public access from any Azure service" rule: it admits the outbound
        # addresses of every Azure customer, not only this subscription's.
        report(f"allows 0.0.0.0-0.0.0.0 (every Azure service of every tenant); {fix}")


@resource_policy(
    name="postgres-private-access-prod",
    description="A production PostgreSQL server has no public endpoint (VNet integration).",
    resource_types=[SERVER],
    severity=Severity.HIGH,
)
def postgres_private_access_prod(args: ResourceValidationArgs, report: Violations) -> None:
    if not is_production(args.get_config(), args.props):
        return
    value = lookup(args.props, "network.publicNetworkAccess")
    if not same_text(value, "Disabled"):
        report(f"{setting('network.publicNetworkAccess', value)} in prod; set it to Disabled")
    if not lookup(args.props, "network.delegatedSubnetResourceId"):
        report(
            "leaves network.delegatedSubnetResourceId unset in prod; "
            "place the server in the delegated PostgreSQL subnet"
        )


@resource_policy(
    name="postgres-entra-auth",
    description="PostgreSQL accepts Microsoft Entra ID authentication.",
    resource_types=[SERVER],
    severity=Severity.HIGH,
)
def postgres_entra_auth(args: ResourceValidationArgs, report: Violations) -> None:
    value = lookup(args.props, "authConfig.activeDirectoryAuth")
    if not same_text(value, "Enabled"):
        report(f"{setting('authConfig.activeDirectoryAuth', value)}; set it to Enabled")


@resource_policy(
    name="postgres-ha-prod",
    description="A production PostgreSQL server has zone-redundant high availability.",
    resource_types=[SERVER],
    severity=Severity.MEDIUM,
)
def postgres_ha_prod(args: ResourceValidationArgs, report: Violations) -> None:
    if not is_production(args.get_config(), args.props):
        return
    value = lookup(args.props, "highAvailability.mode")
    if not same_text(value, "ZoneRedundant"):
        report(f"{setting('highAvailability.mode', value)} in prod; set it to ZoneRedundant")


@resource_policy(
    name="postgres-geo-backup-prod",
    description="A production PostgreSQL server keeps geo-redundant backups.",
    resource_types=[SERVER],
    severity=Severity.MEDIUM,
    benchmark="CKV_AZURE_136",
)
def postgres_geo_backup_prod(args: ResourceValidationArgs, report: Violations) -> None:
    if not is_production(args.get_config(), args.props):
        return
    value = lookup(args.props, "backup.geoRedundantBackup")
    if not same_text(value, "Enabled"):
        report(f"{setting('backup.geoRedundantBackup', value)} in prod; set it to Enabled")


CONFIGURATION = "azure-native:dbforpostgresql:Configuration"


@resource_policy(
    name="postgres-tls-required",
    description="No PostgreSQL server parameter turns require_secure_transport off.",
    resource_types=[CONFIGURATION],
    severity=Severity.HIGH,
)
def postgres_tls_required(args: ResourceValidationArgs, report: Violations) -> None:
    # It is on by default on a flexible server; only an override can turn TLS off.
    if str(args.props.get("configurationName")) != "require_secure_transport":
        return
    value = args.props.get("value")
    if not same_text(value, "on"):
        report(
            f"{setting('value', value)} for require_secure_transport; remove the Configuration "
            "(the server requires TLS by default)"
        )
