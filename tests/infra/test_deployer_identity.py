"""Whoever runs `pulumi up` is granted cluster admin as what it is (issue 16, "CI identity").

A role assignment whose principalType does not match the principal fails with
UnmatchedPrincipalType, and kubelogin's non-interactive modes other than azurecli are never a
user; the config says which, and refuses a contradiction. The deployer's own address reaches
the API server for the run (CI's runner has none of the configured ranges).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.config import StackConfigError, parse_stack_config
from tests.infra.conftest import stack_file


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
