"""The stack configuration model: what ``Pulumi.<stack>.yaml`` may say, validated up front.

Every setting the environment layer reads lives under the ``recplat:`` namespace
(plus ``azure-native:location`` and ``azure-native:subscriptionId``). ``load_stack_config``
turns it into one frozen ``StackConfig`` of the sections in ``infra.config``, and checks the
rules that span sections; a bad value stops the program before any resource is declared,
with a message that names the stack file, the key and the fix.
"""

from __future__ import annotations

import re
from typing import Any, Self

import pulumi
from pydantic import ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from infra.config import (
    GUID,
    PROJECT,
    AccessConfig,
    ClusterConfig,
    ConfigSection,
    DaskConfig,
    DatabaseConfig,
    ImagesConfig,
    IngressConfig,
    KubeloginMode,
    LakeConfig,
    MlflowConfig,
    MonitoringConfig,
    NetworkConfig,
    PrincipalType,
    VaultConfig,
)

_STACK_NAME = re.compile(r"[a-z][a-z0-9]{1,5}")
_CONFIG_SECTIONS = (
    "network",
    "cluster",
    "lake",
    "vault",
    "database",
    "mlflow",
    "monitoring",
    "dask",
    "images",
    "access",
    "ingress",
)


class StackConfigError(Exception):
    """The stack configuration is invalid; the message says where and how to fix it."""


class StackConfig(ConfigSection):
    """Everything one environment (stack) is configured with."""

    stack: str
    location: str
    subscription_id: str
    network: NetworkConfig = NetworkConfig()
    cluster: ClusterConfig
    lake: LakeConfig
    vault: VaultConfig = VaultConfig()
    database: DatabaseConfig
    mlflow: MlflowConfig = MlflowConfig()
    monitoring: MonitoringConfig
    dask: DaskConfig = DaskConfig()
    images: ImagesConfig
    access: AccessConfig = AccessConfig()
    ingress: IngressConfig
    """Required: without a host and certificate the brand APIs would be served over HTTP."""

    @field_validator("stack")
    @classmethod
    def _stack(cls, stack: str) -> str:
        if not _STACK_NAME.fullmatch(stack):
            raise ValueError(
                f"stack name {stack!r} must be 2-6 lowercase letters or digits "
                "(it is part of 24-character global names)"
            )
        return stack

    @field_validator("subscription_id")
    @classmethod
    def _subscription(cls, value: str) -> str:
        if not GUID.fullmatch(value):
            raise ValueError(f"{value!r} is not a subscription id (a GUID)")
        return value.lower()

    @model_validator(mode="after")
    def _mlflow_scale(self) -> Self:
        if self.mlflow.max_replicas < self.mlflow.replicas:
            raise ValueError("mlflow.maxReplicas must be >= mlflow.replicas")
        return self

    @model_validator(mode="after")
    def _zonal_features_need_zones(self) -> Self:
        if self.database.zone_redundant_ha and self.database.sku_tier == "Burstable":
            raise ValueError("database.zoneRedundantHa needs skuTier GeneralPurpose or higher")
        return self

    @model_validator(mode="after")
    def _deployer_type_matches_its_login(self) -> Self:
        # kubelogin's workloadidentity, spn and msi modes sign in as an application, never a user.
        mode = self.cluster.kubelogin_mode
        if mode != KubeloginMode.AZURECLI and self.access.deployer_principal_type == (
            PrincipalType.USER
        ):
            raise ValueError(
                f"access.deployerPrincipalType User contradicts cluster.kubeloginMode {mode}, "
                "which signs in as an application: set recplat:access.deployerPrincipalType "
                "ServicePrincipal"
            )
        return self

    @property
    def cluster_for_deployer(self) -> ClusterConfig:
        """The cluster config with the deployer's address among the API server's ranges."""
        extra = self.access.deployer_ip_range
        if extra is None:
            return self.cluster
        ranges = [*self.cluster.api_server_authorized_ip_ranges, extra]
        return self.cluster.model_copy(update={"api_server_authorized_ip_ranges": ranges})

    @property
    def tags(self) -> dict[str, str]:
        """Tags every taggable Azure resource of this environment carries."""
        return {"environment": self.stack, "managed-by": "pulumi", "project": PROJECT}


def _location_of(error: dict[str, Any]) -> str:
    parts = [str(part) for part in error["loc"]]
    if parts and parts[0] in ("location", "subscriptionId", "subscription_id"):
        return f"azure-native:{to_camel(parts[0])}"
    return "recplat:" + ".".join(parts)


def parse_stack_config(stack: str, raw: dict[str, Any]) -> StackConfig:
    """Validate camelCase ``raw`` for ``stack``; raise ``StackConfigError`` on any problem."""
    try:
        return StackConfig.model_validate({"stack": stack, **raw})
    except ValidationError as error:
        lines = [
            f"Pulumi.{stack}.yaml: {_location_of(dict(item))}: {item['msg']}"
            + (f" (got {item['input']!r})" if not isinstance(item["input"], dict) else "")
            for item in error.errors()
        ]
        fix = f"fix it with `pulumi config set --path <key> <value> -s {stack}` or edit the file"
        raise StackConfigError("\n".join([*lines, fix])) from None


def load_stack_config() -> StackConfig:
    """Read the current stack's configuration from the Pulumi engine (real or mocked)."""
    stack = pulumi.get_stack()
    recplat = pulumi.Config(PROJECT)
    azure = pulumi.Config("azure-native")
    raw: dict[str, Any] = {}
    location = azure.get("location")
    if location is not None:
        raw["location"] = location
    subscription = azure.get("subscriptionId")
    if subscription is None:
        raise StackConfigError(
            f"Pulumi.{stack}.yaml: azure-native:subscriptionId is not set; run "
            f"`pulumi config set azure-native:subscriptionId <subscription id> -s {stack}`"
        )
    raw["subscriptionId"] = subscription
    for section in _CONFIG_SECTIONS:
        value = recplat.get_object(section)
        if value is not None:
            raw[section] = value
    return parse_stack_config(stack, raw)
