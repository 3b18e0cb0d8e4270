"""Shared infra fixtures: offline plans of the real program, made once per session.

Each plan runs ``infra/__main__.py`` under Pulumi's mocks in its own process
(``recplat.plan.plan_stack``), so dev, prod and any temporary brands directory can
be planned side by side. Plans are cached per (stack, brands directory).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from recplat.plan import Plan, plan_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
STACKS = ("dev", "prod")


def stack_file(stack: str) -> dict[str, Any]:
    """The ``config`` mapping of ``Pulumi.<stack>.yaml``."""
    return dict(yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())["config"])


def kubernetes_version(stack: str) -> str:
    """The cluster's Kubernetes version for ``stack`` as kubernetes-validate wants it (1.33.0)."""
    version = str(stack_file(stack)["recplat:cluster"]["kubernetesVersion"])
    return version if version.count(".") == 2 else f"{version}.0"


@pytest.fixture(scope="session")
def plan_for(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Path | None], Plan]:
    """``plan_for(stack, brands_dir)``: a cached offline plan; ``None`` means no brands."""
    cache: dict[tuple[str, str], Plan] = {}
    empty = tmp_path_factory.mktemp("no-brands")

    def plan(stack: str, brands_dir: Path | None = None) -> Plan:
        directory = (brands_dir or empty).resolve()
        key = (stack, str(directory))
        if key not in cache:
            cache[key] = plan_stack(stack, brands_dir=directory, repo_root=REPO_ROOT)
        return cache[key]

    return plan


@pytest.fixture(scope="session")
def environment_plans(plan_for: Callable[[str, Path | None], Plan]) -> dict[str, Plan]:
    """The environment alone (no brands) for every stack."""
    return {stack: plan_for(stack, None) for stack in STACKS}


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
