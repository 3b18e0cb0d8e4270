"""How a policy learns its stack and whether a resource is a brand's, outside the offline path."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from pulumi_policy import ResourceValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

from policies.aks import aks_standard_tier_prod
from policies.context import is_brand_resource, stack_name
from policies.tags import TAGGABLE_TYPES
from tests.policies.known_good import known_good_stack, resource

pytestmark = pytest.mark.fast


def _run(planned: dict, config: dict | None = None) -> list[str]:
    messages: list[str] = []
    args = ResourceValidationArgs(
        planned["type"],
        unknown_checking_proxy(planned["inputs"]),
        planned["urn"],
        planned["name"],
        None,  # type: ignore[arg-type]
        None,
        config,
    )

    def report_violation(message: str, urn: str | None = None) -> None:
        messages.append(message)

    aks_standard_tier_prod.validate(args, report_violation)
    return messages


@pytest.fixture(autouse=True)
def _no_engine_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_STACK", raising=False)


def test_without_config_or_engine_the_environment_tag_decides() -> None:
    cluster = resource(known_good_stack("dev"), "aks")  # Free tier, tagged environment=dev

    assert _run(cluster) == []


def test_without_any_hint_a_resource_is_judged_as_prod() -> None:
    cluster = resource(known_good_stack("dev"), "aks")
    del cluster["inputs"]["tags"]

    assert _run(cluster) == [
        f"policy aks-standard-tier-prod: {cluster['urn']} sets sku.tier=Free in prod; "
        "set it to Standard"
    ]


def test_config_stack_beats_the_engine_and_the_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_STACK", "acme-org/recplat/prod")

    assert stack_name({}, {"environment": "dev"}) == "prod"
    assert stack_name({"stack": "dev"}, {"environment": "prod"}) == "dev"


def test_brand_resources_are_known_by_their_brandstack_ancestor_or_brand_tag() -> None:
    planned = known_good_stack("dev")
    brand_identity = resource(planned, "acme-identity")
    kubelet_role = resource(planned, "kubelet-acr-pull")

    assert is_brand_resource(brand_identity["urn"], {})
    assert not is_brand_resource(kubelet_role["urn"], {})
    assert is_brand_resource(kubelet_role["urn"], {"tags": {"brand": "acme"}})


def _sdk_source(token: str) -> str:
    _, module, _ = token.split(":")
    spec = importlib.util.find_spec("pulumi_azure_native")
    assert spec is not None and spec.submodule_search_locations
    directory = Path(next(iter(spec.submodule_search_locations))) / module
    marker = f"'{token}'"
    for path in directory.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if f"            {marker}," in text:
            return text
    raise AssertionError(f"{token}: no such resource in pulumi-azure-native")


@pytest.mark.parametrize("token", sorted(TAGGABLE_TYPES))
def test_every_taggable_type_exists_in_the_sdk_and_takes_tags(token: str) -> None:
    source = _sdk_source(token)
    init = re.search(r"class \w+Args:\n    def __init__\(__self__, \*,(.*?)\):", source, re.S)
    assert init is not None, token
    assert re.search(r"\btags: ", init.group(1)), f"{token} takes no tags"
