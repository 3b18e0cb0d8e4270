"""The real program's dev and prod stacks, with every example brand, under the policy pack.

The plans come from ``recplat.plan.plan_stack`` (the Pulumi program under mocks),
so these tests judge what ``pulumi up`` would create, not hand-written fixtures.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from policies.offline import PolicyReport, evaluate_stack
from policies.pack_config import config_for_stack
from policies.tags import TAGGABLE_TYPES

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=["dev", "prod"])
def planned(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    from recplat.plan import plan_stack

    stack = str(request.param)
    return stack, plan_stack(stack, repo_root=REPO_ROOT).resources


def test_example_stacks_have_no_mandatory_violation(planned: tuple[str, list[dict]]) -> None:
    stack, resources = planned

    report: PolicyReport = evaluate_stack(resources, stack)

    assert report.mandatory == (), report.render()


def test_only_the_policies_the_stack_config_relaxes_are_violated(
    planned: tuple[str, list[dict]],
) -> None:
    # The shipped config may downgrade a policy in dev; everything else holds at full
    # strength, so a stack's config never hides a violation it does not mean to.
    stack, resources = planned
    relaxed = {
        name for name, level in config_for_stack(stack).items() if level in ("advisory", "disabled")
    }

    report = evaluate_stack(resources, stack, {"all": "mandatory"})

    assert {v.policy for v in report.violations} <= relaxed, report.render()


def _takes_tags(token: str) -> bool:
    _, module, _ = token.split(":")
    spec = importlib.util.find_spec("pulumi_azure_native")
    assert spec is not None and spec.submodule_search_locations
    directory = Path(next(iter(spec.submodule_search_locations))) / module
    for path in directory.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if f"            '{token}'," in text:
            head = text.split("class ", 2)[1]  # the first class is the resource's Args
            return "\n                 tags: " in head
    raise AssertionError(f"{token}: not found in pulumi-azure-native")


def test_every_taggable_type_the_program_creates_is_checked_for_tags(
    planned: tuple[str, list[dict]],
) -> None:
    _, resources = planned
    azure_types = {r["type"] for r in resources if r["type"].startswith("azure-native:")}

    unchecked = sorted(t for t in azure_types - TAGGABLE_TYPES if _takes_tags(t))

    assert unchecked == []
