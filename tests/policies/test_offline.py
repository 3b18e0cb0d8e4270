"""The offline evaluation ``recplat plan`` uses: config, enforcement levels, unknowns, report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policies.offline import PolicyInputError, engine_props, evaluate_stack
from policies.pack_config import CONFIG_DIR, PackConfigError, load_pack_config
from tests.policies.known_good import known_good_stack, resource

pytestmark = pytest.mark.fast


def _public_api_server(stack: str) -> list[dict]:
    planned = known_good_stack(stack)
    del resource(planned, "aks")["inputs"]["apiServerAccessProfile"]
    return planned


def test_shipped_dev_config_makes_a_public_api_server_advisory() -> None:
    report = evaluate_stack(_public_api_server("dev"), "dev")

    assert [(v.policy, v.enforcement) for v in report.violations] == [
        ("aks-api-server-restricted", "advisory")
    ]
    assert report.mandatory == ()


def test_shipped_prod_config_makes_a_public_api_server_mandatory() -> None:
    report = evaluate_stack(_public_api_server("prod"), "prod")

    assert [(v.policy, v.enforcement) for v in report.mandatory] == [
        ("aks-api-server-restricted", "mandatory")
    ]


def test_a_policy_entry_overrides_all_and_disabled_skips_the_policy() -> None:
    config = {"all": "advisory", "aks-api-server-restricted": "disabled"}

    report = evaluate_stack(_public_api_server("prod"), "prod", config)

    assert report.violations == ()
    assert report.levels["aks-api-server-restricted"] == "disabled"
    assert report.levels["storage-tls12"] == "advisory"


def test_remediate_counts_as_mandatory_like_the_engine() -> None:
    config = {"aks-api-server-restricted": {"enforcementLevel": "remediate"}}

    report = evaluate_stack(_public_api_server("dev"), "dev", config)

    assert [v.enforcement for v in report.violations] == ["mandatory"]


def test_allowed_registries_come_from_policy_properties() -> None:
    config = {"k8s-image-from-environment-acr": {"allowedRegistries": ["mirror.example.com"]}}

    report = evaluate_stack(known_good_stack("prod"), "prod", config)

    assert {v.policy for v in report.violations} == {"k8s-image-from-environment-acr"}
    assert len(report.violations) == 3  # the service, the CronJob and the Job


def test_an_unknown_input_is_an_advisory_cant_run_note_as_in_a_preview() -> None:
    planned = known_good_stack("prod")
    lake = resource(planned, "lake")
    lake["inputs"]["minimumTlsVersion"] = UNKNOWN_STRING_VALUE

    report = evaluate_stack(planned, "prod", {"all": "mandatory"})

    assert [(v.policy, v.enforcement, v.message) for v in report.violations] == [
        (
            "storage-tls12",
            "advisory",
            "can't run policy 'storage-tls12' from policy pack 'recplat' during preview: "
            "string value at .minimumTlsVersion can't be known during preview",
        )
    ]


def test_inputs_reach_policies_as_the_engine_sends_them() -> None:
    props = engine_props({"days": 7, "nested": {"flags": [True, None]}}, "urn:x")

    assert props == {"days": 7.0, "nested": {"flags": [True, None]}}
    assert isinstance(props["days"], float)


def test_a_resource_without_a_urn_is_refused_with_its_problem() -> None:
    with pytest.raises(PolicyInputError, match=re.escape("planned resource ?: missing urn")):
        evaluate_stack([{"type": "azure-native:storage:StorageAccount", "name": "x"}], "dev")


def test_an_unknown_policy_in_config_is_refused_by_name() -> None:
    with pytest.raises(
        PackConfigError,
        match=re.escape(
            "policy config for stack dev: storage-tls13: no such policy; use 'all' or a "
            "policy id from policies/README.md"
        ),
    ):
        evaluate_stack([], "dev", {"storage-tls13": "mandatory"})


def test_a_bad_level_is_refused_with_the_choices() -> None:
    with pytest.raises(
        PackConfigError,
        match=re.escape(
            "all: enforcement level must be one of advisory, mandatory, remediate, "
            "disabled, got 'strict'"
        ),
    ):
        evaluate_stack([], "dev", {"all": "strict"})


def test_a_broken_config_file_is_refused_with_its_path_and_line(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    path.write_text('{\n  "all": mandatory\n}\n')

    with pytest.raises(PackConfigError, match=re.escape(f"{path}: line 2: not valid JSON")):
        load_pack_config(path)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_configs_name_only_real_policies(stack: str) -> None:
    config = json.loads((CONFIG_DIR / f"{stack}.json").read_text())
    assert evaluate_stack(known_good_stack(stack), stack, config).violations == ()


def test_render_groups_by_policy_mandatory_first_with_a_summary() -> None:
    planned = _public_api_server("dev")
    resource(planned, "lake")["inputs"]["minimumTlsVersion"] = "TLS1_0"
    aks_urn = resource(planned, "aks")["urn"]
    lake_urn = resource(planned, "lake")["urn"]

    text = evaluate_stack(planned, "dev").render()

    assert text.splitlines() == [
        "storage-tls12 (mandatory, high): 1",
        f"  policy storage-tls12: {lake_urn} sets minimumTlsVersion=TLS1_0; set it to TLS1_2",
        "aks-api-server-restricted (advisory, high): 1",
        f"  policy aks-api-server-restricted: {aks_urn} exposes the API server to the internet; "
        "set apiServerAccessProfile.enablePrivateCluster=true or authorizedIPRanges",
        "stack dev: 1 mandatory and 1 advisory violations (57 policies over 21 resources)",
    ]
