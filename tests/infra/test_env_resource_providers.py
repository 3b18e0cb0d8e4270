"""An empty subscription has registered almost no resource providers (issue 16, review).

ARM answers ``MissingSubscriptionRegistration`` for a resource in an unregistered namespace,
and pulumi-azure-native does not register namespaces itself, so the first `pulumi up` of the
registry or the environment fails unless they are registered first. The namespaces to
register come from ``infra/resource_providers.py``; every resource type either program
declares must map to one of them. (The deploy workflow and the README register them:
tests/workflows/test_first_deploy_workflow.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from infra.resource_providers import (
    ADD_ON_NAMESPACES,
    REGISTERED_BY_DEFAULT,
    namespace_of,
    namespaces_to_register,
)
from recplat.plan import Plan
from tests.infra.plan_queries import REPO_ROOT, STACKS
from tests.infra.registry_plan import plan_registry

BRANDS_DIR = REPO_ROOT / "brands"


@pytest.mark.parametrize("stack", STACKS)
def test_every_azure_resource_of_either_program_is_in_a_registered_namespace(
    plan_for: Callable[[str, Path | None], Plan], stack: str
) -> None:
    types = {r["type"] for r in plan_for(stack, BRANDS_DIR).resources}
    types |= {r["type"] for r in plan_registry(stack)["resources"]}
    azure = sorted(t for t in types if t.startswith("azure-native:"))
    assert "azure-native:containerregistry:Registry" in azure
    registered = set(namespaces_to_register()) | REGISTERED_BY_DEFAULT
    missing = {t: namespace_of(t) for t in azure if namespace_of(t) not in registered}
    assert not missing, f"namespaces nobody registers: {missing}"


def test_what_aks_and_its_add_ons_create_is_registered_too() -> None:
    """The cluster's scale sets, policy, monitoring and Grafana resources are not declared by
    the program but fail the same way on a subscription that lacks their namespace."""
    namespaces = namespaces_to_register()
    for namespace in ("Microsoft.Compute", "Microsoft.PolicyInsights", "Microsoft.Monitor"):
        assert namespace in ADD_ON_NAMESPACES and namespace in namespaces
    assert not REGISTERED_BY_DEFAULT & set(namespaces)
    assert namespaces == sorted(set(namespaces))


def test_a_type_of_an_unknown_module_is_refused_with_the_fix() -> None:
    assert namespace_of("azure-native:monitor:AzureMonitorWorkspace") == "Microsoft.Monitor"
    assert namespace_of("azure-native:monitor:DataCollectionRule") == "Microsoft.Insights"
    with pytest.raises(KeyError, match="MODULE_NAMESPACES"):
        namespace_of("azure-native:cdn:Profile")
