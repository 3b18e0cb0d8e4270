"""Shared infra fixtures: offline plans of the real program, made once per session.

Each plan runs ``infra/__main__.py`` under Pulumi's mocks in its own process
(``recplat.plan.plan_stack``), so dev, prod and any temporary brands directory can
be planned side by side. Plans are cached per (stack, brands directory). What tests read
from the plans is in ``tests/infra/plan_queries.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from recplat.plan import Plan, plan_stack
from tests.infra.plan_queries import REPO_ROOT, STACKS


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
