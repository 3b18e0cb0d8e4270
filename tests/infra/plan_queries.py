"""What infra tests read from the stacks and their plans: a stack file's config, the cluster's
Kubernetes version, the one resource of a type, and an input at a dotted path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from recplat.plan import Plan

REPO_ROOT = Path(__file__).resolve().parents[2]
STACKS = ("dev", "prod")


def stack_file(stack: str) -> dict[str, Any]:
    """The ``config`` mapping of ``Pulumi.<stack>.yaml``."""
    return dict(yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())["config"])


def kubernetes_version(stack: str) -> str:
    """The cluster's Kubernetes version for ``stack`` as kubernetes-validate wants it (1.33.0)."""
    version = str(stack_file(stack)["recplat:cluster"]["kubernetesVersion"])
    return version if version.count(".") == 2 else f"{version}.0"


def one(plan: Plan, token: str, name_suffix: str = "") -> dict[str, Any]:
    """The single resource of type ``token`` (whose logical name ends with ``name_suffix``)."""
    found = [r for r in plan.of_type(token) if str(r["name"]).endswith(name_suffix)]
    assert len(found) == 1, (
        f"stack {plan.stack}: expected one {token} named *{name_suffix}, "
        f"found {[r['urn'] for r in found]}"
    )
    return found[0]


def lookup(props: dict[str, Any], path: str) -> Any:
    """The input at dotted ``path``, or ``None``."""
    node: Any = props
    for key in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node
