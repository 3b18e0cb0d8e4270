"""Offline evaluation: run the whole policy pack over a planned stack without the Pulumi engine.

``recplat plan`` calls :func:`evaluate_stack` with the resources the program
registered under Pulumi's mocks. Each policy runs the way the engine's analyzer
runs it (pulumi_policy ``_PolicyAnalyzerServicer``):

- inputs go through a protobuf ``Struct`` round trip and ``deserialize_properties``,
  so numbers arrive as floats and secrets unwrapped, exactly as in a preview;
- they are wrapped in ``unknown_checking_proxy`` and handed over in real
  ``ResourceValidationArgs`` / ``StackValidationArgs``;
- ``disabled`` policies are skipped, ``remediate`` counts as ``mandatory`` and an
  ``UnknownValueError`` becomes an advisory "can't run policy" diagnostic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, struct_pb2
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policies.catalog import ALL_POLICIES, POLICY_NAMES, RESOURCE_POLICIES, STACK_POLICIES
from policies.pack_config import (
    config_for_stack,
    enforcement_for,
    properties_for,
    validate_pack_config,
)

PACK_NAME = "recplat"


class PolicyInputError(ValueError):
    """A planned resource the engine could not have sent to a policy pack."""


@dataclass(frozen=True)
class Violation:
    """One reported violation, as ``pulumi preview`` would print it."""

    policy: str
    enforcement: str
    severity: str
    urn: str
    message: str


@dataclass(frozen=True)
class PolicyReport:
    """Every violation of one stack, grouped by policy for the terminal."""

    stack: str
    violations: tuple[Violation, ...]
    resources: int
    policies: int
    levels: Mapping[str, str] = field(default_factory=dict)

    @property
    def mandatory(self) -> tuple[Violation, ...]:
        """Violations that block ``pulumi up``."""
        return tuple(v for v in self.violations if v.enforcement == "mandatory")

    @property
    def advisory(self) -> tuple[Violation, ...]:
        """Violations that only warn."""
        return tuple(v for v in self.violations if v.enforcement == "advisory")

    def by_policy(self) -> dict[str, list[Violation]]:
        """Violations grouped by policy id, mandatory policies first, then by id."""
        groups: dict[str, list[Violation]] = {}
        for violation in sorted(
            self.violations, key=lambda v: (v.enforcement != "mandatory", v.policy, v.urn)
        ):
            groups.setdefault(violation.policy, []).append(violation)
        return groups

    def render(self) -> str:
        """Plain text for the terminal: one block per violated policy, then a summary line."""
        lines = []
        for policy, violations in self.by_policy().items():
            first = violations[0]
            lines.append(f"{policy} ({first.enforcement}, {first.severity}): {len(violations)}")
            lines.extend(f"  {violation.message}" for violation in violations)
        summary = (
            f"stack {self.stack}: {len(self.mandatory)} mandatory and {len(self.advisory)} "
            f"advisory violations ({self.policies} policies over {self.resources} resources)"
        )
        lines.append(summary)
        return "\n".join(lines)


def engine_props(props: Mapping[str, Any], urn: str) -> dict[str, Any]:
    """Inputs as the analyzer receives them: through a protobuf Struct and back."""
    struct = struct_pb2.Struct()
    try:
        struct.update(_json_safe(props))
    except (TypeError, ValueError) as error:
        raise PolicyInputError(f"{urn}: inputs are not JSON-like values: {error}") from error
    return deserialize_properties(json_format.MessageToDict(struct))


def _json_safe(value: Any) -> Any:
    # Struct has no integer type and rejects NaN; the engine sends NaN as null.
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _options(parent: str | None) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=parent,
    )


def evaluate_stack(
    resources: Sequence[Mapping[str, Any]],
    stack: str,
    config: Mapping[str, Any] | None = None,
) -> PolicyReport:
    """Run every recplat policy over ``resources`` as the policy engine would.

    Each resource is a mapping with ``urn``, ``type``, ``name``, ``inputs``
    (camelCase inputs) and ``parent``. ``config`` is a policy pack config (see
    :mod:`policies.pack_config`); without one, ``policies/config/<stack>.json``
    applies when it exists, else the code defaults.
    """
    pack_config = dict(config_for_stack(stack) if config is None else config)
    validate_pack_config(pack_config, POLICY_NAMES, f"policy config for stack {stack}")
    planned = [_planned(resource) for resource in resources]
    violations: list[Violation] = []
    levels: dict[str, str] = {}

    for policy in ALL_POLICIES:
        level = enforcement_for(policy, pack_config)
        levels[policy.name] = level.value
        if level == EnforcementLevel.DISABLED:
            continue
        if level == EnforcementLevel.REMEDIATE:
            level = EnforcementLevel.MANDATORY
        policy_config = {"stack": stack, **properties_for(policy, pack_config)}
        if policy in RESOURCE_POLICIES:
            for resource in planned:
                args = ResourceValidationArgs(
                    resource["type"],
                    unknown_checking_proxy(resource["inputs"]),
                    resource["urn"],
                    resource["name"],
                    _options(resource["parent"]),
                    None,
                    policy_config,
                )
                _run(policy, args, level, resource["urn"], violations)
        elif policy in STACK_POLICIES:
            stack_args = StackValidationArgs(_policy_resources(planned), policy_config)
            _run(policy, stack_args, level, "", violations)

    return PolicyReport(
        stack=stack,
        violations=tuple(violations),
        resources=len(planned),
        policies=len(ALL_POLICIES),
        levels=levels,
    )


def _planned(resource: Mapping[str, Any]) -> dict[str, Any]:
    missing = [key for key in ("urn", "type", "name") if not resource.get(key)]
    if missing:
        raise PolicyInputError(
            f"planned resource {dict(resource).get('urn', '?')}: missing {', '.join(missing)}"
        )
    urn = str(resource["urn"])
    return {
        "urn": urn,
        "type": str(resource["type"]),
        "name": str(resource["name"]),
        "inputs": engine_props(resource.get("inputs") or {}, urn),
        "parent": resource.get("parent") or None,
    }


def _policy_resources(planned: Sequence[Mapping[str, Any]]) -> list[PolicyResource]:
    by_urn = {
        resource["urn"]: PolicyResource(
            resource["type"],
            unknown_checking_proxy(resource["inputs"]),
            resource["urn"],
            resource["name"],
            _options(resource["parent"]),
            None,
            None,
            [],
            {},
        )
        for resource in planned
    }
    for resource in planned:
        if resource["parent"] in by_urn:
            by_urn[resource["urn"]].parent = by_urn[resource["parent"]]
    return list(by_urn.values())


def _run(
    policy: Policy,
    args: ResourceValidationArgs | StackValidationArgs,
    level: EnforcementLevel,
    urn: str,
    violations: list[Violation],
) -> None:
    severity = policy.severity.value if policy.severity else "unspecified"

    def report_violation(message: str, reported_urn: str | None = None) -> None:
        violations.append(
            Violation(policy.name, level.value, severity, reported_urn or urn, message)
        )

    try:
        policy.validate(args, report_violation)  # type: ignore[attr-defined]
    except UnknownValueError as error:
        # The engine downgrades a policy that meets an unknown value to an advisory note.
        violations.append(
            Violation(
                policy.name,
                EnforcementLevel.ADVISORY.value,
                severity,
                urn,
                f"can't run policy '{policy.name}' from policy pack '{PACK_NAME}' during "
                f"preview: {error.message}",
            )
        )
