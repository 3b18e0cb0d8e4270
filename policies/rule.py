"""How a recplat policy is declared: a pulumi-policy ``Policy`` plus what the README needs.

Every rule module declares its policies with :func:`resource_policy` or
:func:`stack_policy`. Both return real ``pulumi_policy`` policy objects, so the
same objects run inside ``pulumi preview --policy-pack policies`` and in the
offline evaluation of ``recplat plan``. The decorators add three things the SDK
does not carry: the resource types a policy applies to, the public benchmark
item it maps to, and one message format for every violation:

    policy <id>: <urn> <what is wrong>; <how to fix it>
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

# Every policy accepts these properties in ``--policy-pack-config``. ``stack``
# pins the environment when the engine does not expose PULUMI_STACK; the
# offline evaluation always sets it.
CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "stack": {"type": "string", "description": "Stack (environment) name, e.g. dev or prod."},
        "allowedRegistries": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Registry hosts workloads may pull from (default: the stack's ACR).",
        },
    }
)


class Violations:
    """Reports violations of one policy in the uniform recplat message format."""

    def __init__(self, policy_name: str, report_violation: ReportViolation, urn: str = "") -> None:
        self._policy_name = policy_name
        self._report_violation = report_violation
        self._urn = urn

    def __call__(self, problem: str, urn: str | None = None) -> None:
        """Report ``problem`` ("<what is wrong>; <how to fix it>") against ``urn``."""
        target = urn or self._urn
        self._report_violation(f"policy {self._policy_name}: {target} {problem}", urn)


class RecplatResourcePolicy(ResourceValidationPolicy):
    """A resource policy that knows its resource types and benchmark item."""

    resource_types: frozenset[str]
    benchmark: str | None


class RecplatStackPolicy(StackValidationPolicy):
    """A stack policy that knows its benchmark item."""

    benchmark: str | None


ResourceCheck = Callable[[ResourceValidationArgs, Violations], None]
StackCheck = Callable[[StackValidationArgs, Violations], None]


def resource_policy(
    *,
    name: str,
    description: str,
    resource_types: Iterable[str],
    severity: Severity,
    enforcement: EnforcementLevel = EnforcementLevel.MANDATORY,
    benchmark: str | None = None,
) -> Callable[[ResourceCheck], RecplatResourcePolicy]:
    """Turn ``check(args, report)`` into a policy that runs on ``resource_types`` only."""
    types = frozenset(resource_types)

    def declare(check: ResourceCheck) -> RecplatResourcePolicy:
        def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
            if args.resource_type in types:
                check(args, Violations(name, report_violation, args.urn))

        policy = RecplatResourcePolicy(
            name=name,
            description=description,
            validate=validate,
            enforcement_level=enforcement,
            config_schema=CONFIG_SCHEMA,
            severity=severity,
            tags=[name.split("-", 1)[0]],
        )
        policy.resource_types = types
        policy.benchmark = benchmark
        return policy

    return declare


def stack_policy(
    *,
    name: str,
    description: str,
    severity: Severity,
    enforcement: EnforcementLevel = EnforcementLevel.MANDATORY,
    benchmark: str | None = None,
) -> Callable[[StackCheck], RecplatStackPolicy]:
    """Turn ``check(args, report)`` into a policy over every resource of the stack."""

    def declare(check: StackCheck) -> RecplatStackPolicy:
        def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
            check(args, Violations(name, report_violation))

        policy = RecplatStackPolicy(
            name=name,
            description=description,
            validate=validate,
            enforcement_level=enforcement,
            config_schema=CONFIG_SCHEMA,
            severity=severity,
            tags=["stack"],
        )
        policy.benchmark = benchmark
        return policy

    return declare


def show(value: Any) -> str:
    """Render an input value the way a user writes it in a message: true, TLS1_0, [..]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def setting(path: str, value: Any) -> str:
    """Say what an input is: "sets minimumTlsVersion=TLS1_0" or "leaves minimumTlsVersion unset"."""
    if value is None:
        return f"leaves {path} unset"
    return f"sets {path}={show(value)}"
