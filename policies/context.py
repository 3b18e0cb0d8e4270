"""What a policy knows about the resource it checks: inputs by path, its stack, its brand.

Inputs arrive as the engine-side camelCase names, wrapped by pulumi-policy's
``unknown_checking_proxy`` (a ``Mapping``/``Sequence`` that raises
``UnknownValueError`` on a value only known after ``pulumi up``). Everything
here reads through that proxy and never mutates it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

PRODUCTION = "prod"

_MISSING = object()


def lookup(props: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """The input at dotted ``path`` (e.g. ``aadProfile.enableAzureRBAC``), or ``default``."""
    node: Any = props
    for key in path.split("."):
        if not isinstance(node, Mapping):
            return default
        node = node.get(key, _MISSING)
        if node is _MISSING:
            return default
    return node


def as_list(value: Any) -> list[Any]:
    """A list for a Sequence input (not a string); an empty list for anything else."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return []


def as_mapping(value: Any) -> Mapping[str, Any]:
    """The value if it is a Mapping input, else an empty mapping."""
    return value if isinstance(value, Mapping) else {}


def is_true(value: Any) -> bool:
    """Whether an input is boolean true (Pulumi never sends "true" strings for booleans)."""
    return value is True


def same_text(value: Any, expected: str) -> bool:
    """Case-insensitive equality; Azure enums are case-insensitive on the wire."""
    return isinstance(value, str) and value.lower() == expected.lower()


def stack_name(config: Mapping[str, Any], tags: Mapping[str, Any] | None = None) -> str:
    """The stack a resource belongs to.

    The policy config's ``stack`` wins (the offline evaluation sets it); then the
    ``PULUMI_STACK`` the CLI exports to a policy pack; then the resource's
    ``environment`` tag. With none of them the answer is ``prod``, so a policy
    never relaxes because it could not tell where it runs.
    """
    configured = config.get("stack")
    if isinstance(configured, str) and configured:
        return configured
    from_engine = os.environ.get("PULUMI_STACK", "")
    if from_engine:
        # Fully qualified names ("org/project/prod") end with the stack.
        return from_engine.rsplit("/", 1)[-1]
    tagged = (tags or {}).get("environment")
    if isinstance(tagged, str) and tagged:
        return tagged
    return PRODUCTION


def is_production(config: Mapping[str, Any], props: Mapping[str, Any]) -> bool:
    """Whether the resource is in the production stack."""
    return stack_name(config, as_mapping(props.get("tags"))) == PRODUCTION


def is_brand_resource(urn: str, props: Mapping[str, Any]) -> bool:
    """Whether a resource belongs to a brand: it sits under a BrandStack or carries a brand tag.

    The URN's type segment lists every ancestor type
    (``...::recplat:brand:BrandStack$recplat:brand:BrandIdentity$azure-native:...::name``),
    so this also holds in a real preview where the parent resource is not visible. The
    offline plan's URNs (Pulumi's mocks) keep only the parent's type, so a type of the
    brand's own module (``recplat:brand:``, its components) marks a brand resource too.
    """
    type_chain = urn.split("::")[2] if urn.count("::") >= 3 else ""
    if any(
        token.rsplit(":", 1)[-1] == "BrandStack" or token.startswith("recplat:brand:")
        for token in type_chain.split("$")
    ):
        return True
    return "brand" in as_mapping(props.get("tags"))
