"""The container registry of one environment, deployed before the environment by its own project.

Workloads cannot start from images that do not exist, and a registry created in the same
``pulumi up`` as the Deployments that pull from it is empty when they start. So the registry
is its own Pulumi project (``registry/``, stacks ``dev`` and ``prod``), run first; images are
then pushed (dev) or imported with ``az acr import`` (prod, an Azure-side copy that needs no
public endpoint on the target), and only then does the environment deploy, pinned by digest
(README, "Deploying to Azure").

Both projects derive the registry's name, resource group and ARM id from the subscription
and stack with ``registry_location``, so the environment needs no stack reference: it
grants AcrPull and (prod) a private endpoint on an id it computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import containerregistry, resources
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from infra.config import PROJECT
from infra.environment_names import environment_names

REGISTRY_PROJECT = f"{PROJECT}-registry"


@dataclass(frozen=True)
class RegistryLocation:
    """Where an environment's registry lives; known before it exists."""

    name: str
    resource_group: str
    id: str

    @property
    def login_server(self) -> str:
        return f"{self.name.lower()}.azurecr.io"


def registry_location(subscription_id: str, stack: str) -> RegistryLocation:
    """The registry of ``stack`` in ``subscription_id``: its own resource group, outliving
    the environment's (an environment torn down and rebuilt finds its images still there)."""
    name = environment_names(subscription_id, stack).registry
    group = f"rg-{PROJECT}-{stack}-registry"
    return RegistryLocation(
        name=name,
        resource_group=group,
        id=(
            f"/subscriptions/{subscription_id.lower()}/resourceGroups/{group}"
            f"/providers/Microsoft.ContainerRegistry/registries/{name}"
        ),
    )


class RegistryConfigError(Exception):
    """The registry stack's configuration is invalid; the message names the key."""


class RegistryConfig(BaseModel):
    """``registry/Pulumi.<stack>.yaml``: what the registry stack may say."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    private_access: bool = True
    """Public network access off (Premium; reached through the environment's private
    endpoint). Images then arrive only by ``az acr import`` or ACR Tasks, which Azure lets
    through as trusted services."""
    zone_redundant: bool = False


def parse_registry_config(stack: str, raw: dict[str, Any]) -> RegistryConfig:
    try:
        return RegistryConfig.model_validate(raw)
    except ValidationError as error:
        lines = [
            f"registry/Pulumi.{stack}.yaml: {REGISTRY_PROJECT}:"
            + ".".join(str(part) for part in item["loc"])
            + f": {item['msg']} (got {item['input']!r})"
            for item in error.errors()
        ]
        raise RegistryConfigError("\n".join(lines)) from None


@dataclass(frozen=True)
class ContainerRegistryArgs:
    """Inputs of ``ContainerRegistry``."""

    subscription_id: str
    stack: str
    location: str
    config: RegistryConfig
    tags: dict[str, str]


class ContainerRegistry(pulumi.ComponentResource):
    """The environment's ACR in its own resource group: no admin user, no anonymous pull."""

    registry_id: pulumi.Output[str]
    login_server: pulumi.Output[str]
    registry_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:registry:ContainerRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        where = registry_location(args.subscription_id, args.stack)
        private = args.config.private_access
        group = resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=where.resource_group,
            location=args.location,
            tags=args.tags,
            opts=child,
        )
        registry = containerregistry.Registry(
            f"{name}-acr",
            registry_name=where.name,
            resource_group_name=group.name,
            location=args.location,
            # Premium is the only SKU with private endpoints.
            sku=containerregistry.SkuArgs(name="Premium" if private else "Standard"),
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            public_network_access="Disabled" if private else "Enabled",
            # "Allow trusted services": what lets `az acr import` and ACR Tasks reach a
            # registry whose public access is off.
            network_rule_bypass_options="AzureServices",
            zone_redundancy="Enabled" if args.config.zone_redundant else "Disabled",
            tags=args.tags,
            opts=child,
        )
        self.registry_id = registry.id
        self.login_server = registry.login_server
        self.registry_name = registry.name
        self.register_outputs(
            {
                "registryId": self.registry_id,
                "loginServer": self.login_server,
                "registryName": self.registry_name,
            }
        )
