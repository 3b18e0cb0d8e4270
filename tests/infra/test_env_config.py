"""Stack configuration: both stack files validate, bad values fail with the file and key named."""

from __future__ import annotations

from typing import Any

import pytest

from infra.environment_names import environment_names
from infra.stack_config import StackConfigError, parse_stack_config
from tests.infra.plan_queries import stack_file

pytestmark = pytest.mark.fast

SUBSCRIPTION = "8f6b0c5e-3d1a-4c2b-9e7f-0a1b2c3d4e5f"


def _raw(stack: str) -> dict[str, Any]:
    raw: dict[str, Any] = {"subscriptionId": SUBSCRIPTION}
    for key, value in stack_file(stack).items():
        _, name = key.split(":")
        raw[name] = value
    return raw


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_committed_stack_files_are_valid(stack: str) -> None:
    config = parse_stack_config(stack, _raw(stack))
    assert config.tags == {"environment": stack, "managed-by": "pulumi", "project": "recplat"}


def test_an_unknown_key_is_rejected_with_its_file_and_path() -> None:
    raw = _raw("dev")
    raw["cluster"] = {**raw["cluster"], "nodeCount": 3}
    with pytest.raises(StackConfigError, match=r"Pulumi\.dev\.yaml: recplat:cluster\.nodeCount"):
        parse_stack_config("dev", raw)


def test_an_open_api_server_is_refused_with_the_fix() -> None:
    raw = _raw("prod")
    raw["cluster"] = {**raw["cluster"], "apiServerAuthorizedIpRanges": ["0.0.0.0/0"]}
    with pytest.raises(StackConfigError) as error:
        parse_stack_config("prod", raw)
    assert "recplat:cluster.apiServerAuthorizedIpRanges" in str(error.value)
    assert "0.0.0.0/0 opens the API server to the internet" in str(error.value)


def test_an_unpinned_image_is_refused() -> None:
    raw = _raw("prod")
    raw["images"] = {**raw["images"], "service": "recplat/ranking-service:latest"}
    with pytest.raises(StackConfigError, match=r"recplat:images\.service: .*not 'latest'"):
        parse_stack_config("prod", raw)


def test_a_missing_subscription_is_explained() -> None:
    raw = _raw("dev")
    raw["subscriptionId"] = "my-subscription"
    with pytest.raises(
        StackConfigError, match=r"azure-native:subscriptionId: .*not a subscription id"
    ):
        parse_stack_config("dev", raw)


def test_global_names_are_deterministic_within_limits_and_distinct_per_subscription() -> None:
    for stack in ("dev", "prod", "stage1"):
        first = environment_names(SUBSCRIPTION, stack)
        assert first == environment_names(SUBSCRIPTION.upper(), stack)
        assert len(first.storage_account) <= 24 and first.storage_account.isalnum()
        assert len(first.key_vault) <= 24
        assert len(first.grafana) <= 23
        other = environment_names("0" * 8 + SUBSCRIPTION[8:], stack)
        assert other.storage_account != first.storage_account


def test_a_stack_name_too_long_for_global_names_is_refused() -> None:
    with pytest.raises(ValueError, match="use a shorter stack name"):
        environment_names(SUBSCRIPTION, "preprod9")
