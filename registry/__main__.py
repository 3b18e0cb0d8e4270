"""The registry program: one ACR for the stack's environment (infra/registry.py says why first)."""

from __future__ import annotations

import pulumi

from infra.registry import (
    REGISTRY_PROJECT,
    ContainerRegistry,
    ContainerRegistryArgs,
    parse_registry_config,
)

stack = pulumi.get_stack()
azure = pulumi.Config("azure-native")
settings = pulumi.Config(REGISTRY_PROJECT)
config = parse_registry_config(
    stack,
    {
        key: value
        for key in ("privateAccess", "zoneRedundant")
        if (value := settings.get_bool(key)) is not None
    },
)
registry = ContainerRegistry(
    "recplat",
    ContainerRegistryArgs(
        subscription_id=azure.require("subscriptionId"),
        stack=stack,
        location=azure.require("location"),
        config=config,
        tags={"environment": stack, "managed-by": "pulumi", "project": "recplat"},
    ),
)
pulumi.export("registryName", registry.registry_name)
pulumi.export("loginServer", registry.login_server)
pulumi.export("registryId", registry.registry_id)
