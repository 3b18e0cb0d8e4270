"""Every private Pulumi API recplat uses, in one place, with the reason no public one does.

The offline plan (``recplat.plan``) runs the Pulumi program under mocks and reads back what
the engine would have received; the offline policy run (``policies.offline``) hands each
policy its inputs the way the engine's analyzer does. Pulumi's SDKs publish neither, so
both reach into modules and methods that are not part of the public API. Nothing else in
the repository may import them (``tests/test_pulumi_internals.py`` greps for that), and
that test also exercises each one, so an SDK upgrade that removes or changes one fails
there, naming the symbol and the installed version, instead of deep inside a plan.

From ``pulumi`` (the Python SDK):

- ``pulumi.runtime.sync_await._sync_await``: the only way to get a value out of an
  ``Output`` outside ``apply``. The plan needs the URNs and the stack's outputs after the
  program ran; ``pulumi.runtime.test`` (public) runs a program but returns nothing.
- ``Output.future()`` and ``Output.resources()``, awaited through ``_sync_await``: an
  output's value, and the resources it comes from, which the engine orders a resource
  after (under mocks the engine's request carries no property dependencies, so the plan
  reads them here). The SDK marks both "Private implementation details - do not document".
  ``Output.is_secret()`` (the plan masks secret stack outputs) is not marked so, but is a
  coroutine, so it too needs ``_sync_await``.
- ``pulumi.runtime.mocks.MockMonitor``: the mock engine. ``Mocks.new_resource`` (public)
  sees a resource's type, name and inputs but not its URN, parent or ``depends_on``; the
  monitor's ``RegisterResource`` request has them all.
- ``pulumi.runtime.rpc.deserialize_properties`` and ``is_rpc_secret``: that request's
  inputs are a protobuf ``Struct`` in the engine's wire encoding (secrets and unknowns as
  signature objects); these decode it as the SDK itself does.
- ``pulumi.runtime.proto`` (``analyzer_pb2``, ``analyzer_pb2_grpc``, ``plugin_pb2``): the
  generated gRPC stubs of the analyzer protocol, which a test uses to talk to the policy
  pack's server the way ``pulumi preview`` does.

From ``pulumi_policy`` (outside its ``__all__``):

- ``pulumi_policy.deserialize.deserialize_properties``: the analyzer's decoding of a
  resource's inputs (numbers as floats, secrets unwrapped), so offline policies see what a
  preview shows them.
- ``pulumi_policy.proxy.unknown_checking_proxy``, ``UnknownValueError`` and
  ``UNKNOWN_STRING_VALUE``: the read-only view that raises on a value only known after
  ``pulumi up``; the analyzer wraps inputs in it and downgrades the error to an advisory
  note, and the stack policies catch it per resource.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, TypeVar

import pulumi


class PulumiInternalsError(ImportError):
    """An SDK upgrade removed or changed a private Pulumi API recplat depends on."""


def sdk_versions() -> str:
    """The installed Pulumi SDKs, for error messages: ``pulumi 3.x, pulumi-policy 1.x``."""
    return f"pulumi {version('pulumi')}, pulumi-policy {version('pulumi-policy')}"


try:
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, plugin_pb2
    from pulumi.runtime.rpc import deserialize_properties as _engine_deserialize_properties
    from pulumi.runtime.rpc import is_rpc_secret
    from pulumi.runtime.sync_await import _sync_await
    from pulumi_policy.deserialize import deserialize_properties as _policy_deserialize_properties
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy
except ImportError as error:  # pragma: no cover - only after an SDK upgrade
    raise PulumiInternalsError(
        f"{error} ({sdk_versions()}): a private Pulumi API recplat uses is gone; see the "
        "list in infra/pulumi_internals.py and run tests/test_pulumi_internals.py"
    ) from error

__all__ = [
    "PRIVATE_APIS",
    "UNKNOWN_STRING_VALUE",
    "MockMonitor",
    "PrivateApi",
    "PulumiInternalsError",
    "UnknownValueError",
    "analyzer_pb2",
    "analyzer_pb2_grpc",
    "engine_properties",
    "is_rpc_secret",
    "missing_private_apis",
    "output_is_secret",
    "output_resources",
    "output_value",
    "plugin_pb2",
    "policy_properties",
    "sdk_versions",
    "sync_await",
    "unknown_checking_proxy",
]

T = TypeVar("T")


@dataclass(frozen=True)
class PrivateApi:
    """One private symbol: ``module.name``, looked up as recplat uses it."""

    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


PRIVATE_APIS = (
    PrivateApi("pulumi.runtime.sync_await", "_sync_await"),
    PrivateApi("pulumi.output", "Output.future"),
    PrivateApi("pulumi.output", "Output.is_secret"),
    PrivateApi("pulumi.output", "Output.resources"),
    PrivateApi("pulumi.runtime.mocks", "MockMonitor.RegisterResource"),
    PrivateApi("pulumi.runtime.rpc", "deserialize_properties"),
    PrivateApi("pulumi.runtime.rpc", "is_rpc_secret"),
    PrivateApi("pulumi.runtime.proto", "analyzer_pb2"),
    PrivateApi("pulumi.runtime.proto", "analyzer_pb2_grpc"),
    PrivateApi("pulumi.runtime.proto", "plugin_pb2"),
    PrivateApi("pulumi_policy.deserialize", "deserialize_properties"),
    PrivateApi("pulumi_policy.proxy", "unknown_checking_proxy"),
    PrivateApi("pulumi_policy.proxy", "UnknownValueError"),
    PrivateApi("pulumi_policy.proxy", "UNKNOWN_STRING_VALUE"),
)
"""What this module imports or calls that the SDKs do not publish."""


def missing_private_apis(apis: tuple[PrivateApi, ...] = PRIVATE_APIS) -> list[str]:
    """One message per symbol in ``apis`` the installed SDKs no longer have."""
    missing = []
    for api in apis:
        try:
            found: Any = importlib.import_module(api.module)
            for part in api.name.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError) as error:
            missing.append(f"{api} is gone from {sdk_versions()}: {error}")
    return missing


def sync_await(awaitable: Awaitable[T]) -> T:
    """Run the event loop until ``awaitable`` is done, from synchronous code."""
    return _sync_await(awaitable)


def output_value(output: pulumi.Output[T]) -> T | None:
    """The resolved value of ``output`` (``None`` while it is unknown)."""
    return sync_await(output.future())


def output_is_secret(output: pulumi.Output[Any]) -> bool:
    """Whether ``output`` is a secret."""
    return sync_await(output.is_secret())


def output_resources(output: pulumi.Output[Any]) -> set[pulumi.Resource]:
    """The resources ``output``'s value comes from: what the engine orders a reader after."""
    return sync_await(output.resources())


def engine_properties(struct: Any) -> Any:
    """Inputs of a ``RegisterResource`` request, decoded, with unknowns kept and secrets
    still wrapped (``is_rpc_secret`` tells them)."""
    return _engine_deserialize_properties(struct, keep_unknowns=True)


def policy_properties(props: dict[str, Any]) -> dict[str, Any]:
    """Inputs as the policy analyzer decodes them for a policy."""
    return _policy_deserialize_properties(props)
