"""The pack as the Pulumi CLI runs it: ``python -m pulumi.policy policies``, over gRPC.

This is the engine's side of ``pulumi preview --policy-pack policies``: the
language host starts the pack, reads the port it prints, configures it and
sends each resource for analysis.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, plugin_pb2

from policies.catalog import ALL_POLICIES
from tests.policies.known_good import known_good_stack, resource

pytestmark = pytest.mark.fast

PACK_DIR = Path(__file__).resolve().parents[2] / "policies"
STARTUP_DEADLINE_S = 60


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(PACK_DIR)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PULUMI_STACK": "prod", "PULUMI_PROJECT": "recplat", "PULUMI_DRY_RUN": "true"},
    )
    try:
        assert process.stdout is not None
        port_line = process.stdout.readline().strip()
        assert port_line.isdigit(), f"pack printed {port_line!r}; stderr: {process.stderr}"
        channel = grpc.insecure_channel(f"127.0.0.1:{port_line}")
        grpc.channel_ready_future(channel).result(timeout=STARTUP_DEADLINE_S)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_pack_advertises_every_policy_with_its_level_and_severity(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())

    assert info.name == "recplat"
    advertised = {policy.name: policy for policy in info.policies}
    assert sorted(advertised) == sorted(policy.name for policy in ALL_POLICIES)
    blob = advertised["storage-no-public-blob"]
    assert blob.enforcementLevel == analyzer_pb2.MANDATORY
    assert blob.severity == analyzer_pb2.POLICY_SEVERITY_CRITICAL


def _analyze(
    analyzer: analyzer_pb2_grpc.AnalyzerStub, planned: dict
) -> analyzer_pb2.AnalyzeResponse:
    properties = struct_pb2.Struct()
    properties.update(planned["inputs"])
    return analyzer.Analyze(
        analyzer_pb2.AnalyzeRequest(
            type=planned["type"], properties=properties, urn=planned["urn"], name=planned["name"]
        )
    )


def test_pack_reports_a_public_storage_account_as_mandatory(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    lake = resource(known_good_stack("prod"), "lake")
    lake["inputs"]["allowBlobPublicAccess"] = True

    response = _analyze(analyzer, lake)

    [diagnostic] = response.diagnostics
    assert diagnostic.policyName == "storage-no-public-blob"
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert diagnostic.message.endswith(
        f"policy storage-no-public-blob: {lake['urn']} sets allowBlobPublicAccess=true; "
        "set it to false"
    )


def test_pack_reads_the_stack_from_the_engine_environment(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    # The pack runs with PULUMI_STACK=prod: the dev cluster (Free tier, tagged dev) is judged
    # as prod, not by its tag.
    cluster = resource(known_good_stack("dev"), "aks")

    response = _analyze(analyzer, cluster)

    assert sorted(d.policyName for d in response.diagnostics) == [
        "aks-standard-tier-prod",
        "tags-platform",
    ]


def test_pack_config_downgrades_a_policy_to_advisory(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    vault = resource(known_good_stack("prod"), "vault")
    vault["inputs"]["properties"]["enablePurgeProtection"] = False
    analyzer.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                "keyvault-purge-protection": analyzer_pb2.PolicyConfig(
                    enforcementLevel=analyzer_pb2.ADVISORY
                )
            }
        )
    )
    try:
        response = _analyze(analyzer, vault)
    finally:
        analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={}))

    [diagnostic] = response.diagnostics
    assert diagnostic.policyName == "keyvault-purge-protection"
    assert diagnostic.enforcementLevel == analyzer_pb2.ADVISORY


def test_pack_plugin_info_is_served(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetPluginInfo(empty_pb2.Empty())
    assert isinstance(info, plugin_pb2.PluginInfo)
    assert info.version
