"""The order the first `pulumi up` on an empty subscription needs, proved on the plan's graph.

``recplat plan`` records, for every resource, the URNs the engine waits for: its parent,
its explicit ``depends_on``, its provider and the resources whose outputs feed its inputs.
Walking that graph shows what must exist before a resource is created (issue 16).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from recplat.plan import Plan
from tests.infra.plan_queries import REPO_ROOT, STACKS

BRANDS_DIR = REPO_ROOT / "brands"
WORKLOADS = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:batch/v1:CronJob",
    "kubernetes:batch/v1:Job",
)
# Custom resource group -> what installs its CRD: an AKS add-on (the cluster) or a release.
CRD_INSTALLERS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "kubernetes.dask.org": lambda r: (
        r["type"] == "kubernetes:helm.sh/v3:Release"
        and r["inputs"].get("chart") == "dask-kubernetes-operator"
    ),
    "secrets-store.csi.x-k8s.io": lambda r: (
        r["type"] == "azure-native:containerservice:ManagedCluster"
    ),
    "azmonitoring.coreos.com": lambda r: (
        r["type"] == "azure-native:containerservice:ManagedCluster"
    ),
    "approuting.kubernetes.azure.com": lambda r: (
        r["type"] == "azure-native:containerservice:ManagedCluster"
    ),
}


class DeployGraph:
    """What each planned resource waits for, transitively."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.index = plan.by_urn()
        self.edges = {
            urn: {*resource["dependencies"], *([resource["parent"]] if resource["parent"] else [])}
            for urn, resource in self.index.items()
        }
        self.before = cache(self._before)

    def _before(self, urn: str) -> frozenset[str]:
        seen: set[str] = set()
        stack = list(self.edges.get(urn, ()))
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            stack.extend(self.edges.get(current, ()))
        return frozenset(seen)

    def waits_for(self, urn: str, predicate: Callable[[dict[str, Any]], bool]) -> bool:
        return any(predicate(self.index[dep]) for dep in self.before(urn) if dep in self.index)


@pytest.fixture(scope="module")
def graphs(plan_for: Callable[[str, Path | None], Plan]) -> dict[str, DeployGraph]:
    return {stack: DeployGraph(plan_for(stack, BRANDS_DIR)) for stack in STACKS}


def _named(type_: str, suffix: str) -> Callable[[dict[str, Any]], bool]:
    return lambda r: r["type"] == type_ and str(r["name"]).endswith(suffix)


def _is_k8s_object(resource: dict[str, Any]) -> bool:
    return str(resource["type"]).startswith("kubernetes:")


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_records_what_it_waits_for(
    graphs: dict[str, DeployGraph], stack: str
) -> None:
    plan = graphs[stack].plan
    assert all(isinstance(r.get("dependencies"), list) for r in plan.resources)
    assert "dependencies" in plan.to_json()["resources"][0]
    # Output references are recorded, not only explicit depends_on: the subnet reads the NSG id.
    subnet = next(
        r for r in plan.of_type("azure-native:network:Subnet") if r["name"].endswith("-nodes")
    )
    assert any("nsg-nodes" in dep for dep in subnet["dependencies"]), subnet["dependencies"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_kubernetes_object_waits_for_usable_cluster_access(
    graphs: dict[str, DeployGraph], stack: str
) -> None:
    """After the deployer's AKS RBAC role has propagated (pulumi-kubernetes does not retry a
    403), the kubelet may pull from the registry, and the user pool that runs every pod exists."""
    graph = graphs[stack]
    sleeps = [r for r in graph.plan.of_type("time:index/sleep:Sleep") if "rbac" in r["name"]]
    assert sleeps, f"stack {stack}: nothing waits for Azure RBAC to propagate"
    (sleep,) = sleeps
    assert graph.waits_for(
        sleep["urn"], _named("azure-native:authorization:RoleAssignment", "-deployer-admin")
    )
    assert graph.waits_for(
        sleep["urn"], _named("azure-native:authorization:RoleAssignment", "-kubelet-acrpull")
    )
    objects = [r for r in graph.plan.resources if _is_k8s_object(r)]
    assert objects
    for resource in objects:
        urn = resource["urn"]
        assert sleep["urn"] in graph.before(urn), (
            f"{urn} may call the API server before RBAC propagates"
        )
        assert graph.waits_for(
            urn, _named("azure-native:containerservice:AgentPool", "-user-pool")
        ), f"{urn} may be created before the user node pool exists"


@pytest.mark.parametrize("stack", STACKS)
def test_every_workload_waits_for_its_registry_and_pull_rights(
    graphs: dict[str, DeployGraph], stack: str
) -> None:
    """A pod created before its image exists, or before the kubelet may pull from the registry,
    backs off until Pulumi's readiness wait times out. When the registry is part of this plan,
    every workload waits for it, and for whatever in the plan builds or imports images; when the
    registry (and its images) come from a project deployed before this one (the image design of
    issue 16), that order is the deploy sequence's, and the graph can only show pull rights."""
    graph = graphs[stack]
    registries = graph.plan.of_type("azure-native:containerregistry:Registry")
    builders = [r for r in graph.plan.resources if "docker" in str(r["type"]).lower()]
    workloads = [
        r
        for r in graph.plan.resources
        if r["type"] in WORKLOADS or r["type"] == "kubernetes:kubernetes.dask.org/v1:DaskCluster"
    ]
    assert workloads
    for workload in workloads:
        urn = workload["urn"]
        assert graph.waits_for(
            urn, _named("azure-native:authorization:RoleAssignment", "-kubelet-acrpull")
        ), f"{urn} may pull before the kubelet has AcrPull"
        for registry in registries:
            assert registry["urn"] in graph.before(urn), f"{urn} may start before the registry"
        if builders:
            assert any(builder["urn"] in graph.before(urn) for builder in builders), (
                f"{urn} may start before its image is built or imported"
            )


@pytest.mark.parametrize("stack", STACKS)
def test_every_custom_object_waits_for_what_installs_its_crd(
    graphs: dict[str, DeployGraph], stack: str
) -> None:
    graph = graphs[stack]
    custom = [
        r
        for r in graph.plan.resources
        if _is_k8s_object(r) and str(r["type"]).split(":")[1].split("/")[0] in CRD_INSTALLERS
    ]
    assert custom
    for resource in custom:
        group = str(resource["type"]).split(":")[1].split("/")[0]
        assert graph.waits_for(resource["urn"], CRD_INSTALLERS[group]), (
            f"{resource['urn']} may be created before the {group} CRD is installed"
        )
    if stack == "prod":  # streamly trains on Dask in prod only
        assert any("DaskCluster" in r["type"] for r in custom)


@pytest.mark.parametrize("stack", STACKS)
def test_the_database_server_children_are_written_one_at_a_time(
    graphs: dict[str, DeployGraph], stack: str
) -> None:
    """A flexible server refuses concurrent operations (ServerIsBusy)."""
    graph = graphs[stack]
    (server,) = graph.plan.of_type("azure-native:dbforpostgresql:Server")
    children = [
        r
        for r in graph.plan.resources
        if str(r["type"]).startswith("azure-native:dbforpostgresql:")
        and r["type"] != "azure-native:dbforpostgresql:Server"
    ]
    assert children
    for child in children:
        assert server["urn"] in graph.before(child["urn"]), child["urn"]
    for first, second in itertools.combinations(children, 2):
        assert first["urn"] in graph.before(second["urn"]) or second["urn"] in graph.before(
            first["urn"]
        ), f"{first['urn']} and {second['urn']} may run on the server at once"
