"""The brand's components alone, in the style of pulumi/examples ``testing-unit-py``: one
component under Pulumi's mocks, its outputs checked inside ``Output.all(...).apply``.

And the property that lets an existing stack take the split of ``BrandStack`` into
components: every brand resource is found, by URN or alias, where it was deployed when every
brand resource was a direct child of its BrandStack (``infra.brand_moves``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.brand_data import BrandData, BrandDataArgs
from infra.brand_names import BrandSecret, brand_names
from infra.brand_namespace import BrandGuardRails, GuardRailsArgs
from infra.brand_stack import BrandStackArgs
from recplat.plan import Plan
from recplat.plan_diff import compare_plans
from tests.infra.brand_plans import (
    EXAMPLE_BRANDS,
    STORAGE_ID,
    VAULT_ID,
    BrandMocks,
    PlannedResource,
    stand_in_platform,
)
from tests.infra.plan_queries import REPO_ROOT

NAMES = brand_names("newsroom", "dev")
NEWSROOM = next(b for b in EXAMPLE_BRANDS if b.name == "newsroom").for_environment("dev")


@pytest.fixture
def planned() -> Iterator[dict[str, PlannedResource]]:
    """Mocks set before the component is built; what it registered, by logical name."""
    resources: dict[str, PlannedResource] = {}
    pulumi.runtime.set_mocks(BrandMocks(resources), project="recplat", stack="dev", preview=False)
    yield resources


def _recording(into: dict[str, pulumi.ResourceOptions]) -> pulumi.ResourceOptions:
    """Options whose transformation keeps every child's options (parent, aliases, depends_on),
    which the mocks do not see."""

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        into[args.name] = args.opts
        return None

    return pulumi.ResourceOptions(transformations=[record])


@pytest.mark.fast
@pulumi.runtime.test
def test_brand_data_names_each_secret_with_the_drawn_suffix(
    planned: dict[str, PlannedResource],
) -> pulumi.Output[Any]:
    platform = stand_in_platform("dev")
    tags = {"brand": "newsroom"}
    data = BrandData("newsroom-data", BrandDataArgs(NAMES, "cc-1", tags, platform))

    def check(values: list[Any]) -> None:
        lake_uri, scope, api_key_name, api_key_scope = values
        assert lake_uri == "abfs://brand-newsroom@strecplatlake.dfs.core.windows.net/"
        assert scope == f"{STORAGE_ID}/blobServices/default/containers/brand-newsroom"
        suffix = planned["newsroom-secret-suffix"].inputs["byteLength"]
        assert api_key_name.startswith("brand-newsroom-api-key-"), api_key_name
        assert len(api_key_name.rsplit("-", 1)[1]) == 2 * suffix, api_key_name
        assert api_key_scope == f"{VAULT_ID}/secrets/{api_key_name}"
        container = planned["newsroom-lake"].inputs
        assert container["publicAccess"] == "None", "a brand's lake is never public"

    return pulumi.Output.all(
        data.lake_uri,
        data.container_scope,
        data.secret_names[BrandSecret.API_KEY],
        data.secret_scope(BrandSecret.API_KEY),
    ).apply(check)


@pytest.mark.fast
@pulumi.runtime.test
def test_guard_rails_children_wait_for_the_namespace_and_alias_their_old_parent(
    planned: dict[str, PlannedResource],
) -> pulumi.Output[Any]:
    platform = stand_in_platform("dev")
    options: dict[str, pulumi.ResourceOptions] = {}
    former_parent = pulumi.ComponentResource("recplat:brand:BrandStack", "newsroom")
    rails = BrandGuardRails(
        "newsroom-guard-rails",
        GuardRailsArgs(
            brand=NEWSROOM, names=NAMES, labels={}, annotations={},
            provider=platform.k8s_provider, mlflow_namespace="mlflow",
            ingress_namespace="ingress", moved_from=former_parent,
        ),
        _recording(options),
    )  # fmt: skip
    children = {name: opts for name, opts in options.items() if name != "newsroom-guard-rails"}
    assert {"newsroom-namespace", "newsroom-quota", "newsroom-netpol-default-deny"} <= set(children)
    for name, opts in children.items():
        assert opts.parent is rails, name
        # Beside any alias of the provider's own (kubernetes' old API groups).
        assert [
            alias
            for alias in opts.aliases or []
            if isinstance(alias, pulumi.Alias) and alias.parent is former_parent
        ], f"{name} has no alias to the BrandStack it was deployed under"
        if name != "newsroom-namespace":
            waits_for = opts.depends_on
            assert isinstance(waits_for, list) and rails.namespace in waits_for, name
    return rails.namespace.id.apply(lambda _: None)


@pytest.mark.fast
def test_brand_stack_args_refuse_a_dask_brand_without_the_operator_at_construction() -> None:
    streamly = next(b for b in EXAMPLE_BRANDS if b.name == "streamly").for_environment("prod")
    with pytest.raises(ValueError, match=r"brands/streamly.yaml: training.workers: 4 needs"):
        BrandStackArgs(brand=streamly, platform=_PlatformWithoutDask())  # type: ignore[arg-type]


class _PlatformWithoutDask:
    """Only what the argument checks read."""

    environment = "prod"
    dask_enabled = False


def _flattened(plan: Plan) -> Plan:
    """``plan`` as the program laid it out before the split: every resource inside a brand
    component a direct child of its BrandStack, no brand components, no aliases."""
    by_urn = plan.by_urn()

    def is_split_component(resource: dict[str, Any] | None) -> bool:
        return resource is not None and (
            resource["type"].startswith("recplat:brand:")
            and resource["type"] != "recplat:brand:BrandStack"
        )

    old_urns: dict[str, str] = {}
    resources = []
    for resource in plan.resources:  # parents first
        if is_split_component(resource):
            continue
        parent = resource["parent"]
        while is_split_component(by_urn.get(parent or "")):
            parent = by_urn[parent]["parent"]
        parent = old_urns.get(parent or "", parent)
        parent_type = parent.split("::")[2].split("$")[-1] if parent else ""
        stack, project = resource["urn"].removeprefix("urn:pulumi:").split("::")[:2]
        chain = f"{parent_type}${resource['type']}" if parent_type else resource["type"]
        urn = f"urn:pulumi:{stack}::{project}::{chain}::{resource['name']}"
        old_urns[resource["urn"]] = urn
        resources.append({**resource, "urn": urn, "parent": parent, "aliases": []})
    return Plan(plan.stack, resources, plan.outputs)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_brand_resource_is_found_where_it_was_before_the_split(
    stack: str, plan_for: Callable[[str, Path | None], Plan]
) -> None:
    """Fails when a component's child has no alias to its BrandStack: ``pulumi up`` would
    delete the deployed resource and create a new one (a new identity, API key, namespace)."""
    plan = plan_for(stack, REPO_ROOT / "brands")
    diff = compare_plans(_flattened(plan), plan, "before the split")
    changes = [change for group in diff.groups.values() for change in group]
    replaced = [f"{c.action} {c.urn}" for c in changes if c.action != "move" and not c.component]
    assert replaced == []
    assert diff.count("move") > 40
    assert all(not c.inputs for c in changes)
    # The same plan with its aliases dropped replaces them all: the check can fail.
    unaliased = Plan(stack, [{**r, "aliases": []} for r in plan.resources], plan.outputs)
    diff = compare_plans(_flattened(plan), unaliased, "before the split")
    assert diff.count("move") == 0 and diff.count("remove") == diff.count("add") > 40


def test_the_brand_scope_policy_still_sees_brand_grants_inside_components(
    plan_for: Callable[[str, Path | None], Plan],
) -> None:
    """The offline plan's URNs keep only the parent's type (BrandIdentity, not BrandStack);
    the policies must still take the brand's role assignments for brand resources."""
    from policies.context import is_brand_resource

    plan = plan_for("dev", REPO_ROOT / "brands")
    grants = [
        r
        for r in plan.of_type("azure-native:authorization:RoleAssignment")
        if plan.brand_of(r["urn"])
    ]
    assert len(grants) >= 7
    assert "BrandStack" not in grants[0]["urn"]
    assert all(is_brand_resource(grant["urn"], {}) for grant in grants)
