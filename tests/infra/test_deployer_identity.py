"""Whoever runs `pulumi up` is granted cluster admin as what it is (issue 16, "CI identity").

A role assignment whose principalType does not match the principal fails with
UnmatchedPrincipalType, and kubelogin's non-interactive modes other than azurecli are never a
user; the config says which, and refuses a contradiction. The deployer's own address reaches
the API server for the run (CI's runner has none of the configured ranges). A person and the
CI principal each get their own assignment: its name follows scope, principal and role.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.azure_roles import (
    AKS_RBAC_CLUSTER_ADMIN,
    GRAFANA_ADMIN,
    role_assignment_name,
    role_definition_id,
)
from infra.plan_mocks import DEPLOYER_OBJECT_ID
from infra.stack_config import StackConfigError, parse_stack_config
from recplat.plan import Plan
from tests.infra.plan_queries import REPO_ROOT, STACKS, stack_file

BRANDS_DIR = REPO_ROOT / "brands"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"


def raw(stack: str) -> dict[str, Any]:
    config = stack_file(stack)
    out: dict[str, Any] = {"subscriptionId": "00000000-0000-4000-8000-00000000c0de"}
    for key, value in config.items():
        namespace, _, name = key.partition(":")
        if namespace == "recplat":
            out[name] = copy.deepcopy(value)
        elif name == "location":
            out["location"] = value
    return out


@pytest.mark.parametrize("mode", ["workloadidentity", "spn", "msi"])
def test_a_non_user_login_with_a_user_principal_type_is_refused(mode: str) -> None:
    config = raw("dev")
    config["cluster"]["kubeloginMode"] = mode
    config["access"]["deployerPrincipalType"] = "User"
    with pytest.raises(StackConfigError) as error:
        parse_stack_config("dev", config)
    message = str(error.value)
    assert "recplat:access.deployerPrincipalType" in message
    assert f"kubeloginMode {mode}" in message
    assert "ServicePrincipal" in message


def test_ci_overrides_make_dev_a_service_principal_deploy() -> None:
    config = raw("dev")
    config["cluster"]["kubeloginMode"] = "workloadidentity"
    config["access"]["deployerPrincipalType"] = "ServicePrincipal"
    parsed = parse_stack_config("dev", config)
    assert str(parsed.access.deployer_principal_type) == "ServicePrincipal"


def test_the_deployers_address_is_added_to_the_api_server_ranges() -> None:
    config = raw("prod")
    config["access"]["deployerIpRange"] = "20.40.60.80/32"
    parsed = parse_stack_config("prod", config)
    ranges = parsed.cluster_for_deployer.api_server_authorized_ip_ranges
    assert ranges == [*config["cluster"]["apiServerAuthorizedIpRanges"], "20.40.60.80/32"]
    without = parse_stack_config("prod", raw("prod"))
    assert without.cluster_for_deployer == without.cluster


@pytest.mark.parametrize("bad", ["0.0.0.0/0", "10.0.0.0/8", "not-an-address"])
def test_the_deployers_address_must_be_one_public_host(bad: str) -> None:
    config = raw("prod")
    config["access"]["deployerIpRange"] = bad
    with pytest.raises(StackConfigError) as error:
        parse_stack_config("prod", config)
    assert "recplat:access.deployerIpRange" in str(error.value)


# A person's object id and the CI service principal's, deploying the same stack in turn.
PERSON = "0d3e1c2b-4a5f-4e6d-8c7b-9a0b1c2d3e4f"
CI_PRINCIPAL = "5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c"
CLUSTER_SCOPE = (
    "/subscriptions/00000000-0000-4000-8000-00000000c0de/resourceGroups/rg-recplat-dev"
    "/providers/Microsoft.ContainerService/managedClusters/aks-recplat-dev"
)


def test_a_person_and_the_ci_principal_get_their_own_cluster_admin_assignment() -> None:
    """Azure refuses to re-point an assignment at another principal, so a name fixed per
    purpose made CI's `pulumi up` fail after a person's (or the other way round)."""
    person = role_assignment_name(CLUSTER_SCOPE, PERSON, AKS_RBAC_CLUSTER_ADMIN)
    ci = role_assignment_name(CLUSTER_SCOPE, CI_PRINCIPAL, AKS_RBAC_CLUSTER_ADMIN)
    assert person != ci
    assert person == role_assignment_name(CLUSTER_SCOPE, PERSON, AKS_RBAC_CLUSTER_ADMIN)
    assert str(uuid.UUID(person)) == person, "Azure wants a GUID"


def test_assignment_names_follow_what_azure_keys_them_on() -> None:
    name = role_assignment_name(CLUSTER_SCOPE, PERSON, AKS_RBAC_CLUSTER_ADMIN)
    # ARM ids are case-insensitive; a role given as its full definition id is the same role.
    assert name == role_assignment_name(
        CLUSTER_SCOPE.upper(),
        PERSON.upper(),
        role_definition_id("00000000-0000-4000-8000-00000000c0de", AKS_RBAC_CLUSTER_ADMIN),
    )
    assert name != role_assignment_name(CLUSTER_SCOPE + "-other", PERSON, AKS_RBAC_CLUSTER_ADMIN)
    assert name != role_assignment_name(CLUSTER_SCOPE, PERSON, GRAFANA_ADMIN)
    with pytest.raises(ValueError, match="principal"):
        role_assignment_name(CLUSTER_SCOPE, "", AKS_RBAC_CLUSTER_ADMIN)


@pytest.mark.parametrize("stack", STACKS)
def test_every_environment_role_assignment_is_named_by_scope_principal_and_role(
    plan_for: Callable[[str, Path | None], Plan], stack: str
) -> None:
    """The deployer's cluster admin and Grafana admin, the kubelet's AcrPull, MLflow's and the
    app routing add-on's grants: none may keep a name when its principal changes."""
    plan = plan_for(stack, BRANDS_DIR)
    environment = [
        r
        for r in plan.of_type(ROLE_ASSIGNMENT)
        if plan.brand_of(r["urn"]) is None  # brands name theirs in infra/brand_names.py
    ]
    assert len(environment) >= 8, [r["urn"] for r in environment]
    for assignment in environment:
        inputs = assignment["inputs"]
        expected = role_assignment_name(
            inputs["scope"], inputs["principalId"], inputs["roleDefinitionId"]
        )
        assert inputs["roleAssignmentName"] == expected, (
            f"{assignment['urn']}: roleAssignmentName {inputs['roleAssignmentName']} is not "
            "derived from its scope, principal and role (infra/azure_roles.py)"
        )
    deployer = [
        r
        for r in environment
        if r["inputs"]["principalId"] == DEPLOYER_OBJECT_ID
        and r["inputs"]["roleDefinitionId"].endswith(AKS_RBAC_CLUSTER_ADMIN)
    ]
    assert len(deployer) == 1, [r["urn"] for r in environment]


@pytest.mark.parametrize("stack", STACKS)
def test_no_two_role_assignments_share_a_name_or_a_grant(
    plan_for: Callable[[str, Path | None], Plan], stack: str
) -> None:
    """Names are unique in the tenant, and Azure refuses a second assignment of one role to
    one principal on one scope (RoleAssignmentExists), brands' included."""
    assignments = plan_for(stack, BRANDS_DIR).of_type(ROLE_ASSIGNMENT)
    names = [r["inputs"]["roleAssignmentName"] for r in assignments]
    grants = [
        (
            r["inputs"]["scope"].lower(),
            r["inputs"]["principalId"].lower(),
            r["inputs"]["roleDefinitionId"].rsplit("/", 1)[-1].lower(),
        )
        for r in assignments
    ]
    assert len(set(names)) == len(names), sorted(names)
    assert len(set(grants)) == len(grants), sorted(grants)
