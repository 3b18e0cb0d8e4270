"""``recplat plan --diff`` matches resources as the Pulumi engine does: by URN, then by alias.

Plans here are written by hand in the shape ``recplat.plan`` records them (mock URNs, which
keep only the parent's type; aliases as the SDK sends them), so each engine rule is pinned
down alone: a resource moved into a new component is the deployed resource when it has an
alias to its old parent, and a replacement (removed and added) when it has none.
"""

from __future__ import annotations

from typing import Any

import pytest

from recplat.plan import Plan
from recplat.plan_aliases import engine_urns, match_resources
from recplat.plan_diff import compare_plans, render_markdown, render_text

pytestmark = pytest.mark.fast

STACK_URN = "urn:pulumi:dev::recplat::pulumi:pulumi:Stack::recplat-dev"
BRAND = "recplat:brand:BrandStack"
SERVICE = "recplat:brand:RankingService"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _urn(parent: str | None, type_: str, name: str) -> str:
    """A URN as Pulumi's mocks make it: the parent's own type only, then the type and name."""
    parent_type = parent.split("::")[2].split("$")[-1] if parent else ""
    return f"urn:pulumi:dev::recplat::{parent_type + '$' if parent_type else ''}{type_}::{name}"


def _resource(
    parent: str | None,
    type_: str,
    name: str,
    inputs: dict[str, Any] | None = None,
    aliases: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "urn": _urn(parent, type_, name),
        "type": type_,
        "name": name,
        "parent": parent,
        "custom": not type_.startswith("recplat:"),
        "inputs": inputs or {},
        "dependencies": [],
        "aliases": aliases or [],
    }


def _spec(parent: str = "", **parts: Any) -> dict[str, Any]:
    """An alias as the SDK sends it: empty parts default to the resource's own."""
    return {"name": "", "type": "", "parent": parent, "no_parent": False, **parts}


BRAND_STACK = _resource(STACK_URN, BRAND, "acme")
DEPLOYED = Plan(
    "dev", [BRAND_STACK, _resource(BRAND_STACK["urn"], DEPLOYMENT, "acme-ranking-deployment")], {}
)


def _moved(aliases: list[dict[str, Any]], inputs: dict[str, Any] | None = None) -> Plan:
    """The deployment moved into a RankingService component under the same BrandStack."""
    service = _resource(BRAND_STACK["urn"], SERVICE, "acme-ranking")
    deployment = _resource(
        service["urn"], DEPLOYMENT, "acme-ranking-deployment", inputs, aliases=aliases
    )
    return Plan("dev", [BRAND_STACK, service, deployment], {})


def test_a_resource_moved_into_a_component_with_an_alias_is_moved_not_replaced() -> None:
    diff = compare_plans(DEPLOYED, _moved([_spec(parent=BRAND_STACK["urn"])]), "main")
    changes = {(c.action, c.component, c.name) for c in diff.groups["acme"]}
    assert changes == {("move", False, "acme-ranking-deployment"), ("add", True, "acme-ranking")}
    (move,) = [c for c in diff.groups["acme"] if c.action == "move"]
    assert move.moved_from == (
        f"urn:pulumi:dev::recplat::{BRAND}${DEPLOYMENT}::acme-ranking-deployment"
    )
    assert (diff.count("add"), diff.count("remove"), diff.count("move")) == (0, 0, 1)
    assert render_text(diff).splitlines()[0] == (
        "recplat plan --diff main (stack dev): 0 to add, 0 to change, 0 to remove, "
        "1 to move (alias), components (no cloud resources): 1 added"
    )


def test_a_resource_moved_without_an_alias_is_removed_and_added() -> None:
    diff = compare_plans(DEPLOYED, _moved([]), "main")
    actions = sorted((c.action, c.name) for c in diff.groups["acme"] if not c.component)
    assert actions == [("add", "acme-ranking-deployment"), ("remove", "acme-ranking-deployment")]
    assert diff.count("move") == 0


def test_a_move_reports_the_inputs_it_changes_too() -> None:
    before = Plan(
        "dev",
        [
            BRAND_STACK,
            _resource(BRAND_STACK["urn"], DEPLOYMENT, "acme-ranking-deployment", {"replicas": 1}),
        ],
        {},
    )
    after = _moved([_spec(parent=BRAND_STACK["urn"])], {"replicas": 2})
    (move,) = [c for c in compare_plans(before, after, "main").groups["acme"] if not c.component]
    assert move.action == "move"
    assert [(i.path, i.before, i.after) for i in move.inputs] == [("replicas", 1, 2)]
    assert "| brand `acme` | 0 | 0 | 0 | 1 |" in render_markdown(compare_plans(before, after, "m"))


def test_an_alias_to_the_wrong_parent_does_not_match() -> None:
    """An alias names the old parent's type: one to the new component (or to the stack) is
    not where the deployment was, so it is still replaced."""
    service_urn = _urn(BRAND_STACK["urn"], SERVICE, "acme-ranking")
    for wrong in (service_urn, STACK_URN):
        assert match_resources(DEPLOYED, _moved([_spec(parent=wrong)])).by_alias == {}, wrong


def test_children_of_a_component_found_by_alias_inherit_its_old_urn() -> None:
    """A component moved by alias takes its children along, as the engine multiplies a
    parent's alias out to every child (renaming a child whose name starts with the parent's)."""
    dashboard = _resource(BRAND_STACK["urn"], "recplat:dashboards:AzureDashboard", "acme-board")
    before = Plan(
        "dev",
        [BRAND_STACK, dashboard, _resource(dashboard["urn"], "azure:Dashboard", "acme-board-def")],
        {},
    )
    monitoring = _resource(BRAND_STACK["urn"], "recplat:brand:BrandMonitoring", "acme-monitoring")
    moved = _resource(
        monitoring["urn"],
        "recplat:dashboards:AzureDashboard",
        "acme-dash",
        aliases=[_spec(parent=BRAND_STACK["urn"], name="acme-board")],
    )
    child = _resource(moved["urn"], "azure:Dashboard", "acme-dash-def")
    diff = compare_plans(before, Plan("dev", [BRAND_STACK, monitoring, moved, child], {}), "m")
    assert {(c.action, c.name) for c in diff.groups["acme"] if c.action != "add"} == {
        ("move", "acme-dash"),
        ("move", "acme-dash-def"),
    }


def test_engine_urns_spell_every_ancestor_but_the_stack() -> None:
    service = _resource(BRAND_STACK["urn"], SERVICE, "acme-ranking")
    deployment = _resource(service["urn"], DEPLOYMENT, "acme-ranking-deployment")
    urns = engine_urns(Plan("dev", [BRAND_STACK, service, deployment], {}))
    assert urns[BRAND_STACK["urn"]] == f"urn:pulumi:dev::recplat::{BRAND}::acme"
    assert urns[deployment["urn"]] == (
        f"urn:pulumi:dev::recplat::{BRAND}${SERVICE}${DEPLOYMENT}::acme-ranking-deployment"
    )
    # The mocks drop the BrandStack from the deployment's URN; the engine does not.
    assert BRAND not in deployment["urn"]


def test_an_alias_given_as_a_urn_or_with_no_parent_is_taken_as_written() -> None:
    old = f"urn:pulumi:dev::recplat::{BRAND}${DEPLOYMENT}::acme-ranking-deployment"
    assert match_resources(DEPLOYED, _moved([{"urn": old}])).by_alias
    top = Plan("dev", [_resource(STACK_URN, DEPLOYMENT, "acme-ranking-deployment")], {})
    assert match_resources(top, _moved([_spec(no_parent=True)])).by_alias
    assert not match_resources(top, _moved([_spec(parent=BRAND_STACK["urn"])])).by_alias
