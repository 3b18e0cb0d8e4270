"""The private Pulumi APIs recplat relies on still exist and behave as it uses them.

``infra/pulumi_internals.py`` is the one module that imports them (the offline plan's mock
engine and the offline policy run need them). An SDK upgrade that removes or changes one
fails here, with the symbol and the installed SDK versions in the message, rather than as
a confusing error inside ``recplat plan``. A last test checks nothing else imports them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.pulumi_internals import (
    UNKNOWN_STRING_VALUE,
    MockMonitor,
    PrivateApi,
    UnknownValueError,
    analyzer_pb2,
    analyzer_pb2_grpc,
    engine_properties,
    is_rpc_secret,
    missing_private_apis,
    output_is_secret,
    output_resources,
    output_value,
    plugin_pb2,
    policy_properties,
    sdk_versions,
    sync_await,
    unknown_checking_proxy,
)

pytestmark = pytest.mark.fast

REPO_ROOT = Path(__file__).resolve().parents[1]
# Pulumi's property wire format (sdk/go/common/resource/properties.go): a secret is a map
# tagged with this signature key and value.
SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIGNATURE = "1b47061264138c4ac30d75fd1eb44270"


def changed(symbol: str, detail: str) -> str:
    return (
        f"{symbol} behaves differently in {sdk_versions()}: {detail}; see infra/pulumi_internals.py"
    )


def test_every_private_pulumi_api_recplat_uses_is_still_there() -> None:
    missing = missing_private_apis()
    assert missing == [], "\n".join(missing)


def test_a_missing_private_api_is_reported_with_its_name_and_the_sdk_versions() -> None:
    gone = (
        PrivateApi("pulumi.runtime.sync_await", "_sync_await_v2"),
        PrivateApi("pulumi_policy.no_such_module", "unknown_checking_proxy"),
    )

    messages = missing_private_apis(gone)

    assert len(messages) == 2, messages
    assert messages[0].startswith("pulumi.runtime.sync_await._sync_await_v2 is gone from pulumi ")
    assert messages[1].startswith("pulumi_policy.no_such_module.unknown_checking_proxy is gone")
    assert all(sdk_versions() in message for message in messages), messages
    assert re.fullmatch(r"pulumi \d+\.\d+\.\d+, pulumi-policy \d+\.\d+\.\d+", sdk_versions())


class _Thing(pulumi.CustomResource):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        super().__init__("test:index:Thing", name, props, opts)


class _Echo(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


def _probe_mock_engine() -> dict[str, Any]:
    """Run a two-resource program under a recording ``MockMonitor``; what ``recplat plan``
    reads from it. Runs in a fresh process: Pulumi's runtime state is global."""
    requests: list[Any] = []

    class Recording(MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)
            requests.append((request, response))
            return response

    echo = _Echo()
    pulumi.runtime.set_mocks(echo, project="internals", stack="test", monitor=Recording(echo))
    made: dict[str, Any] = {}

    def program() -> None:
        parent = pulumi.ComponentResource("test:index:Group", "group")
        first = _Thing(
            "first",
            {"password": pulumi.Output.secret("s3cret"), "size": 3},
            pulumi.ResourceOptions(parent=parent),
        )
        first_path = first.id.apply(lambda first_id: f"{first_id}/path")
        second = _Thing(
            "second",
            {"firstPath": first_path},
            pulumi.ResourceOptions(parent=parent, depends_on=[first]),
        )
        made.update(group=parent, first=first, second=second, first_path=first_path)

    pulumi.runtime.test(program)()
    by_name = {request.name: (request, response) for request, response in requests}
    first_request, first_response = by_name["first"]
    inputs = engine_properties(first_request.object)
    return {
        "registered": sorted(by_name),
        "first_urn": output_value(made["first"].urn),
        "first_response_urn": first_response.urn,
        "first_parent": first_request.parent,
        "group_urn": output_value(made["group"].urn),
        "second_dependencies": list(by_name["second"][0].dependencies),
        "size": inputs["size"],
        "password_is_secret": is_rpc_secret(inputs["password"]),
        "derived_from_first": output_resources(made["first_path"]) == {made["first"]},
        "secret_is_secret": output_is_secret(pulumi.Output.secret("x")),
        "plain_is_secret": output_is_secret(pulumi.Output.from_input("x")),
    }


def test_the_mock_engine_shows_urn_parent_dependencies_and_secret_inputs() -> None:
    """What ``recplat plan`` records from each registration, on a two-resource program."""
    process = subprocess.run(
        [sys.executable, "-m", "tests.test_pulumi_internals"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert process.returncode == 0, changed("the mock engine", process.stderr[-3000:])
    seen = json.loads(process.stdout)

    assert {"group", "first", "second"} <= set(seen["registered"]), changed(
        "pulumi.runtime.mocks.MockMonitor.RegisterResource", f"saw {seen['registered']}"
    )
    assert seen["first_response_urn"] == seen["first_urn"], changed(
        "Output.future via _sync_await", f"urn {seen['first_urn']!r}"
    )
    assert seen["first_parent"] == seen["group_urn"], changed(
        "MockMonitor.RegisterResource", "the request's parent is not the component's URN"
    )
    assert seen["first_urn"] in seen["second_dependencies"], changed(
        "MockMonitor.RegisterResource", f"depends_on missing: {seen['second_dependencies']}"
    )
    assert seen["size"] == 3 and seen["password_is_secret"], changed(
        "pulumi.runtime.rpc.deserialize_properties / is_rpc_secret", str(seen)
    )
    assert seen["derived_from_first"], changed(
        "Output.resources", "a derived output does not name the resource it comes from"
    )
    assert seen["secret_is_secret"] and not seen["plain_is_secret"], changed(
        "Output.is_secret", str(seen)
    )


def test_sync_await_runs_a_coroutine_to_its_value() -> None:
    async def answer() -> int:
        return 42

    assert sync_await(answer()) == 42, changed("pulumi.runtime.sync_await._sync_await", "no 42")


def test_the_analyzer_decoding_unwraps_secrets_and_keeps_numbers() -> None:
    wire = {
        "size": 3.0,
        "password": {SIGNATURE_KEY: SECRET_SIGNATURE, "value": "s3cret"},
        "rules": [{"name": "a"}],
    }

    decoded = policy_properties(wire)

    assert decoded == {"size": 3.0, "password": "s3cret", "rules": [{"name": "a"}]}, changed(
        "pulumi_policy.deserialize.deserialize_properties", f"decoded {decoded!r}"
    )


def test_the_policy_proxy_raises_on_an_unknown_value_and_passes_known_ones() -> None:
    props = unknown_checking_proxy({"known": "TLS1_2", "nested": {"tls": UNKNOWN_STRING_VALUE}})

    assert props["known"] == "TLS1_2", changed("pulumi_policy.proxy", "known value altered")
    with pytest.raises(UnknownValueError) as raised:
        props["nested"]["tls"]
    assert raised.value.message == "string value at .nested.tls can't be known during preview", (
        changed("pulumi_policy.proxy.UnknownValueError", f"message {raised.value.message!r}")
    )


def test_the_analyzer_protocol_stubs_carry_what_the_pack_server_test_sends() -> None:
    request = analyzer_pb2.AnalyzeRequest(type="t", urn="u", name="n")

    assert (request.type, request.urn, request.name) == ("t", "u", "n"), changed(
        "pulumi.runtime.proto.analyzer_pb2.AnalyzeRequest", str(request)
    )
    assert hasattr(analyzer_pb2_grpc, "AnalyzerStub"), changed("analyzer_pb2_grpc", "no stub")
    assert plugin_pb2.PluginInfo(version="1").version == "1", changed("plugin_pb2", "PluginInfo")


PRIVATE_IMPORT = re.compile(
    r"pulumi\.runtime\.(sync_await|mocks|rpc|stack|settings|proto)\b"
    r"|from pulumi\.runtime import [^\n]*\b(sync_await|mocks|rpc|stack|settings|proto)\b"
    r"|pulumi_policy\.(proxy|deserialize)\b"
    r"|\b_sync_await\b"
)
SOURCE_DIRS = ("recplat", "infra", "policies", "tests", "benchmarks", "registry", "scripts")
ALLOWED = {Path("infra/pulumi_internals.py"), Path("tests/test_pulumi_internals.py")}


def test_no_module_but_pulumi_internals_reaches_into_private_pulumi_apis() -> None:
    sources = [
        path
        for directory in (*SOURCE_DIRS, "reference-service", "reference-training")
        for path in (REPO_ROOT / directory).rglob("*.py")
        if path.relative_to(REPO_ROOT) not in ALLOWED
    ]
    assert len(sources) > 100, f"only {len(sources)} sources found under {REPO_ROOT}"
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if PRIVATE_IMPORT.search(line)
    ]
    assert offenders == [], (
        "private Pulumi APIs used outside infra/pulumi_internals.py (import them from there, "
        "and list any new one in its docstring and PRIVATE_APIS):\n" + "\n".join(offenders)
    )


if __name__ == "__main__":
    print(json.dumps(_probe_mock_engine()))
