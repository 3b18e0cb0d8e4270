"""The first `pulumi up` on an empty subscription finds its images (issue 16, "Images that do
not exist yet").

A registry created in the same run as the Deployments that pull from it is empty when they
start. So the registry is its own project (``registry/``), deployed first; the environment
creates none, and every image its workloads run is in the registry that project creates for
the same subscription and stack, which the environment finds by derived name and id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.plan_mocks import PLACEHOLDER_SUBSCRIPTION
from infra.registry import RegistryConfigError, parse_registry_config, registry_location
from policies.workloads import WORKLOAD_TYPES, containers, pod_spec_of
from recplat.plan import Plan
from tests.infra.plan_queries import STACKS, one, stack_file
from tests.infra.registry_plan import plan_registry

REPO_ROOT = Path(__file__).resolve().parents[2]
REGISTRY = "azure-native:containerregistry:Registry"


def images(plan: Plan) -> Iterator[tuple[str, str]]:
    for resource in plan.resources:
        if resource["type"] in WORKLOAD_TYPES:
            for container in containers(pod_spec_of(resource["type"], resource["inputs"])):
                yield resource["urn"], str(container["image"])


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def registry_plans() -> dict[str, dict[str, Any]]:
    return {name: plan_registry(name) for name in STACKS}


def test_the_environment_creates_no_registry_for_its_own_workloads(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    plan = environment_plans[stack]
    created = [resource["urn"] for resource in plan.of_type(REGISTRY)]
    assert created == [], (
        f"stack {stack}: {created} would be empty when the Deployments that pull from it "
        "start; the registry belongs to the registry project, deployed first"
    )


def test_every_workload_pulls_from_the_registry_project_of_its_stack(
    plan_for: Any, stack: str
) -> None:
    plan = plan_for(stack, REPO_ROOT / "brands")
    where = registry_location(PLACEHOLDER_SUBSCRIPTION, stack)
    pulled = list(images(plan))
    assert pulled, f"stack {stack}: no workload in the plan"
    for urn, image in pulled:
        assert image.startswith(f"{where.login_server}/"), f"{urn}: {image}"
    pull = one(plan, "azure-native:authorization:RoleAssignment", "kubelet-acrpull")
    assert pull["inputs"]["scope"] == where.id, pull["urn"]


def test_the_registry_project_creates_that_registry_first(
    registry_plans: dict[str, dict[str, Any]], stack: str
) -> None:
    plan = registry_plans[stack]
    subscription = plan["config"]["azure-native:subscriptionId"]
    where = registry_location(subscription, stack)
    (registry,) = [r for r in plan["resources"] if r["type"] == REGISTRY]
    (group,) = [r for r in plan["resources"] if r["type"] == "azure-native:resources:ResourceGroup"]
    assert registry["inputs"]["registryName"] == where.name
    assert group["inputs"]["resourceGroupName"] == where.resource_group
    assert plan["outputs"]["loginServer"] == where.login_server
    assert plan["outputs"]["registryId"].endswith(
        f"/resourceGroups/{where.resource_group}/providers/Microsoft.ContainerRegistry/"
        f"registries/{where.name}"
    )
    assert registry["inputs"]["adminUserEnabled"] is False
    assert registry["inputs"]["anonymousPullEnabled"] is False


@pytest.mark.parametrize(
    ("name", "sku", "access"), [("dev", "Standard", "Enabled"), ("prod", "Premium", "Disabled")]
)
def test_prod_registry_is_private_and_lets_az_acr_import_through(
    registry_plans: dict[str, dict[str, Any]], name: str, sku: str, access: str
) -> None:
    (registry,) = [r for r in registry_plans[name]["resources"] if r["type"] == REGISTRY]
    assert registry["inputs"]["sku"]["name"] == sku
    assert registry["inputs"]["publicNetworkAccess"] == access
    # "To import to or from a network-restricted Azure container registry, the restricted
    # registry must allow access by trusted services to bypass the network."
    assert registry["inputs"]["networkRuleBypassOptions"] == "AzureServices"


def test_registry_access_matches_the_environments_private_endpoints(stack: str) -> None:
    registry = yaml.safe_load((REPO_ROOT / "registry" / f"Pulumi.{stack}.yaml").read_text())
    private_access = registry["config"]["recplat-registry:privateAccess"]
    private_endpoints = stack_file(stack)["recplat:network"]["privateEndpoints"]
    assert private_access == private_endpoints, (
        f"registry/Pulumi.{stack}.yaml privateAccess={private_access} but Pulumi.{stack}.yaml "
        f"privateEndpoints={private_endpoints}: the environment's registry endpoint needs both"
    )


def test_registry_config_errors_name_the_key() -> None:
    with pytest.raises(RegistryConfigError) as error:
        parse_registry_config("dev", {"privateAccess": "maybe"})
    assert str(error.value).startswith("registry/Pulumi.dev.yaml: recplat-registry:privateAccess:")
