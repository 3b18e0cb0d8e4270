"""The sections of the stack configuration: what each ``recplat:<section>`` key may say.

One pydantic model per section of ``Pulumi.<stack>.yaml`` (``network``, ``cluster``, ``lake``
...), each validating its own values; the enums name the closed choices. The whole
configuration, the rules that span sections and reading it from the engine are
``infra.stack_config``.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

PROJECT = "recplat"
# An Entra object id or a subscription id.
GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# An image reference relative to the environment's ACR, pinned by tag, digest, or both
# (`repo:tag@sha256:...`: Kubernetes pulls the digest; the tag says which commit it is).
_IMAGE = re.compile(
    r"[a-z0-9][a-z0-9._/-]*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})"
)
# A DNS host name: lowercase labels of 1-63 letters, digits and inner hyphens, 2+ labels.
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# Key Vault object names: 1-127 letters, digits and hyphens.
_VAULT_OBJECT_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")


class UpgradeChannel(StrEnum):
    """AKS auto-upgrade channels we allow (``none`` is deliberately absent)."""

    PATCH = "patch"
    STABLE = "stable"
    RAPID = "rapid"
    NODE_IMAGE = "node-image"


class KubeloginMode(StrEnum):
    """How ``kubelogin`` obtains the Entra token for the Kubernetes provider."""

    AZURECLI = "azurecli"
    WORKLOAD_IDENTITY = "workloadidentity"
    SERVICE_PRINCIPAL = "spn"
    MANAGED_IDENTITY = "msi"


class PrincipalType(StrEnum):
    """Who runs ``pulumi up``: a person or a CI service principal."""

    USER = "User"
    SERVICE_PRINCIPAL = "ServicePrincipal"
    GROUP = "Group"


class IngressExposure(StrEnum):
    """Where the brand APIs' load balancer listens: inside the VNet, or on the internet."""

    INTERNAL = "internal"
    PUBLIC = "public"


class ConfigSection(BaseModel):
    """A section of the stack config: camelCase keys, nothing unknown, immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class NetworkConfig(ConfigSection):
    address_space: str = "10.40.0.0/16"
    nodes_subnet: str = "10.40.0.0/20"
    endpoints_subnet: str = "10.40.16.0/24"
    database_subnet: str = "10.40.17.0/24"
    pod_cidr: str = "192.168.0.0/16"
    service_cidr: str = "172.16.0.0/16"
    dns_service_ip: str = "172.16.0.10"
    private_endpoints: bool = True
    """Private endpoints for lake, vault, registry and private access for PostgreSQL."""

    @field_validator("address_space", "nodes_subnet", "endpoints_subnet", "database_subnet")
    @classmethod
    def _cidr(cls, value: str) -> str:
        ipaddress.ip_network(value)
        return value

    @model_validator(mode="after")
    def _subnets_inside_vnet(self) -> Self:
        space = ipaddress.ip_network(self.address_space)
        for key in ("nodes_subnet", "endpoints_subnet", "database_subnet"):
            subnet = ipaddress.ip_network(getattr(self, key))
            if not subnet.subnet_of(space):  # type: ignore[arg-type]
                raise ValueError(f"{to_camel(key)} {subnet} is outside addressSpace {space}")
        return self


class NodePoolConfig(ConfigSection):
    vm_size: str
    min_count: int = Field(ge=1, le=100)
    max_count: int = Field(ge=1, le=1000)
    os_disk_size_gb: int = Field(default=128, ge=30, le=2048)

    @model_validator(mode="after")
    def _max_not_below_min(self) -> Self:
        if self.max_count < self.min_count:
            raise ValueError(
                f"maxCount must be >= minCount ({self.min_count}), got {self.max_count}"
            )
        return self


class MaintenanceWindowConfig(ConfigSection):
    day_of_week: str = "Sunday"
    start_time: str = Field(default="02:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    duration_hours: int = Field(default=4, ge=4, le=24)
    utc_offset: str = Field(default="+00:00", pattern=r"^[+-][01][0-9]:[0-5][0-9]$")


# AKS supports a Kubernetes minor version for 12 months after its GA (Microsoft Learn,
# "Supported Kubernetes versions in AKS"); 1.33 left support on AKS by 2026-11-29. These are
# the minors this program was written and checked for (kubernetes-validate schemas, add-on
# CRDs, API versions); re-check with `az aks get-versions --location <region> -o table`.
SUPPORTED_KUBERNETES_MINORS = ("1.34", "1.35", "1.36")
KUBERNETES_VERSIONS_REVIEWED = "2026-11-29"


class ClusterConfig(ConfigSection):
    kubernetes_version: str = Field(pattern=r"^1\.[0-9]{2}(\.[0-9]+)?$")
    tier: str = Field(pattern=r"^(Free|Standard|Premium)$")
    zones: list[str] = []
    system_pool: NodePoolConfig
    user_pool: NodePoolConfig
    upgrade_channel: UpgradeChannel = UpgradeChannel.PATCH
    maintenance_window: MaintenanceWindowConfig = MaintenanceWindowConfig()
    api_server_authorized_ip_ranges: list[str] = Field(min_length=1)
    """CIDRs of operators and CI; AKS refuses 0.0.0.0/0 here by policy."""
    kubelogin_mode: KubeloginMode = KubeloginMode.AZURECLI

    @field_validator("kubernetes_version")
    @classmethod
    def _supported_version(cls, version: str) -> str:
        minor = ".".join(version.split(".")[:2])
        if minor not in SUPPORTED_KUBERNETES_MINORS:
            raise ValueError(
                f"Kubernetes {version} is not one this program was written for "
                f"({', '.join(SUPPORTED_KUBERNETES_MINORS)}, reviewed "
                f"{KUBERNETES_VERSIONS_REVIEWED}); pick one that "
                "`az aks get-versions --location <region> --output table` lists as supported "
                "(not preview, not past end of life) and that is in that list, or review the "
                "program for the new version and extend SUPPORTED_KUBERNETES_MINORS in "
                "infra/config.py"
            )
        return version

    @field_validator("zones")
    @classmethod
    def _zones(cls, zones: list[str]) -> list[str]:
        if any(zone not in {"1", "2", "3"} for zone in zones):
            raise ValueError(f"zones must be among '1', '2', '3', got {zones}")
        return zones

    @field_validator("api_server_authorized_ip_ranges")
    @classmethod
    def _ranges(cls, ranges: list[str]) -> list[str]:
        for cidr in ranges:
            if ipaddress.ip_network(cidr).prefixlen == 0:
                raise ValueError("0.0.0.0/0 opens the API server to the internet; list your CIDRs")
        return ranges


class LakeConfig(ConfigSection):
    sku: str = Field(pattern=r"^Standard_(LRS|ZRS|GRS|GZRS|RAGRS|RAGZRS)$")
    soft_delete_days: int = Field(default=7, ge=1, le=365)
    events_cool_after_days: int = Field(default=30, ge=1)
    events_delete_after_days: int = Field(default=365, ge=1)
    allowed_ip_ranges: list[str] = []
    """Public CIDRs allowed through the lake firewall when private endpoints are off."""

    @model_validator(mode="after")
    def _delete_after_cool(self) -> Self:
        if self.events_delete_after_days <= self.events_cool_after_days:
            raise ValueError("eventsDeleteAfterDays must be greater than eventsCoolAfterDays")
        return self


class VaultConfig(ConfigSection):
    soft_delete_retention_days: int = Field(default=90, ge=7, le=90)
    purge_protection: bool = True


class DatabaseConfig(ConfigSection):
    sku_name: str
    sku_tier: str = Field(pattern=r"^(Burstable|GeneralPurpose|MemoryOptimized)$")
    version: str = "16"
    storage_gb: int = Field(default=32, ge=32)
    backup_retention_days: int = Field(default=7, ge=7, le=35)
    geo_redundant_backup: bool = False
    zone_redundant_ha: bool = False
    zone: str = "1"


class MlflowConfig(ConfigSection):
    replicas: int = Field(default=1, ge=1, le=10)
    max_replicas: int = Field(default=3, ge=1, le=20)
    cpu: str = "500m"
    memory: str = "1Gi"
    workers: int = Field(default=2, ge=1, le=16)


class MonitoringConfig(ConfigSection):
    alert_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    log_retention_days: int = Field(default=30, ge=30, le=730)
    grafana_public_access: bool = True
    """Grafana is the humans' window; Entra sign-in guards it. Off needs a private endpoint."""


class DaskConfig(ConfigSection):
    enabled: bool = True
    chart_version: str = Field(default="2025.7.0", pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")


class ImagesConfig(ConfigSection):
    """Images in the environment's ACR (the registry project's, deployed first), pinned by tag
    or digest (never ``latest``). The deploy workflow pins digests it pushed or imported."""

    service: str
    training: str
    mlflow: str

    @field_validator("service", "training", "mlflow")
    @classmethod
    def _pinned(cls, image: str) -> str:
        if not _IMAGE.fullmatch(image) or image.endswith(":latest"):
            raise ValueError(
                f"{image!r} must be '<repository>:<tag>', '<repository>@sha256:<digest>' or "
                "'<repository>:<tag>@sha256:<digest>', not 'latest'"
            )
        return image


class AccessConfig(ConfigSection):
    deployer_principal_type: PrincipalType = PrincipalType.USER
    """Type of the identity running ``pulumi up``; it gets cluster-admin RBAC on AKS. Azure
    refuses an assignment whose type is not the principal's (``UnmatchedPrincipalType``), so
    CI, a service principal, sets ``ServicePrincipal`` for its run."""
    deployer_ip_range: str | None = None
    """The public address (one host, ``/32``) of whoever runs ``pulumi up``, added to the API
    server's authorized ranges for the run. CI sets its runner's; never committed."""
    admin_group_object_ids: list[str] = []

    @field_validator("deployer_ip_range")
    @classmethod
    def _one_public_host(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            network = ipaddress.ip_network(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an address range such as 198.51.100.7/32") from None
        if network.num_addresses != 1 or not network.is_global:
            raise ValueError(
                f"{value!r} must be one public address (/32 or /128): the runner or operator "
                "that runs `pulumi up`"
            )
        return str(network)

    @field_validator("admin_group_object_ids")
    @classmethod
    def _guids(cls, ids: list[str]) -> list[str]:
        for value in ids:
            if not GUID.fullmatch(value):
                raise ValueError(f"{value!r} is not an Entra object id (a GUID)")
        return ids


class IngressConfig(ConfigSection):
    """The HTTPS edge of the brand APIs: one host per environment, its certificate in Key Vault."""

    host: str
    """DNS name clients call, e.g. ``api.recplat-dev.example.com``; brands live under
    ``/brands/<name>/`` on it. The certificate must cover it."""
    certificate_name: str
    """Name of the TLS certificate in the environment's Key Vault (imported or issued there)."""
    exposure: IngressExposure = IngressExposure.INTERNAL
    """``internal`` (default): a private VNet IP; ``public`` puts the edge on the internet."""

    @field_validator("host")
    @classmethod
    def _host(cls, host: str) -> str:
        labels = host.split(".")
        if len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
            raise ValueError(
                "must be a DNS name such as api.example.com (no scheme, port or path), "
                "in lowercase letters, digits, hyphens and dots"
            )
        if len(labels) < 2:
            raise ValueError("must be a fully qualified DNS name with at least two labels")
        return host

    @field_validator("certificate_name")
    @classmethod
    def _certificate_name(cls, name: str) -> str:
        if not _VAULT_OBJECT_NAME.fullmatch(name):
            raise ValueError(
                "must be a Key Vault certificate name: 1-127 letters, digits and hyphens"
            )
        return name
