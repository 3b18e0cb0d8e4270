"""Which deployed resource the Pulumi engine takes a planned resource to be: by URN, else by alias.

``recplat plan --diff`` must say what ``pulumi up`` would do to a stack deployed from the
base tree, so it matches resources as the engine does (its step generator:
``generateURN``, ``generateAliases``, ``collapseAliasToUrn``, ``inheritedChildAlias``):

- A URN spells the types of all the resource's ancestors but the stack, then its own
  type and name. Pulumi's mocks keep only the parent's type, so the plan's ``urn`` is not
  the engine's: ``engine_urns`` rebuilds the engine's from the parent chain.
- A resource is the deployed resource with its URN, else the first with one of its
  aliases: each alias the program sent (a URN, or a spec whose empty parts default to the
  resource's own name, type and parent), and, when its parent was itself found by alias,
  the same child under that old parent (with the parent's old name as the prefix of its
  own name where the new one had it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recplat.plan import Plan

ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def _parts(urn: str) -> tuple[str, str, str, str]:
    """(stack, project, qualified type, name) of ``urn:pulumi:<stack>::<project>::<type>::<n>``."""
    stack, project, qualified, name = urn.removeprefix("urn:pulumi:").split("::", 3)
    return stack, project, qualified, name


def new_urn(stack: str, project: str, parent_type: str, type_: str, name: str) -> str:
    """The engine's URN of a resource whose parent has qualified type ``parent_type``."""
    if parent_type and parent_type != ROOT_STACK_TYPE:
        type_ = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


def engine_urns(plan: Plan) -> dict[str, str]:
    """Each planned resource's ``urn`` (as the mocks name it) -> the engine's URN for it."""
    by_urn = plan.by_urn()
    result: dict[str, str] = {}

    def engine(urn: str) -> str:
        if urn not in result:
            resource = by_urn[urn]
            stack, project, _, _ = _parts(urn)
            parent = resource["parent"]
            parent_type = _parts(engine(parent))[2] if parent in by_urn else ""
            result[urn] = new_urn(stack, project, parent_type, resource["type"], resource["name"])
        return result[urn]

    for urn in by_urn:
        engine(urn)
    return result


@dataclass
class Matches:
    """Planned resource (head ``urn``) -> deployed resource (base ``urn``) it updates."""

    by_urn: dict[str, str] = field(default_factory=dict)
    by_alias: dict[str, str] = field(default_factory=dict)
    old_urns: dict[str, str] = field(default_factory=dict)
    """For a resource found by alias: the deployed resource's URN, as the engine spells it."""


@dataclass
class _Engine:
    """The engine's view of one head plan against the URNs of a deployed (base) stack."""

    head: Plan
    olds: dict[str, str]
    """Engine URN of each deployed resource -> its base plan ``urn``."""
    urns: dict[str, str] = field(init=False)
    moved: dict[str, str] = field(default_factory=dict)
    """Engine URN of a resource found by alias -> the old engine URN it took over."""

    def __post_init__(self) -> None:
        self.urns = engine_urns(self.head)

    def parent_urn(self, resource: dict[str, Any]) -> str:
        return self.urns.get(resource["parent"] or "", "")

    def collapse(self, resource: dict[str, Any], alias: dict[str, Any]) -> str:
        """An alias as a URN; an empty part of a spec is the resource's own."""
        if alias.get("urn"):
            return str(alias["urn"])
        stack, project, _, _ = _parts(self.urns[resource["urn"]])
        parent = self.parent_urn(resource)
        if alias.get("parent"):
            parent = self.urns.get(alias["parent"], alias["parent"])
            parent = self.moved.get(parent, parent)
        if alias.get("no_parent") or (parent and parent.split("::")[2] == ROOT_STACK_TYPE):
            parent = ""
        return new_urn(
            alias.get("stack") or stack,
            alias.get("project") or project,
            _parts(parent)[2] if parent else "",
            alias.get("type") or resource["type"],
            alias.get("name") or resource["name"],
        )

    def aliases(self, resource: dict[str, Any]) -> list[str]:
        """Every URN the engine would look for, after the resource's own, in order."""
        own = [self.collapse(resource, alias) for alias in resource.get("aliases") or []]
        found = list(own)
        parent = self.parent_urn(resource)
        if parent in self.moved:
            old_parent, parent_name = self.moved[parent], _parts(parent)[3]
            for type_, name in [
                (resource["type"], resource["name"]),
                *((_parts(urn)[2].rsplit("$", 1)[-1], _parts(urn)[3]) for urn in own),
            ]:
                if name.startswith(parent_name):
                    name = _parts(old_parent)[3] + name.removeprefix(parent_name)
                stack, project, old_type, _ = _parts(old_parent)
                found.append(new_urn(stack, project, old_type, type_, name))
        return list(dict.fromkeys(found))


def match_resources(base: Plan, head: Plan) -> Matches:
    """Which deployed resource (base plan) each planned resource (head plan) would update."""
    olds = {engine: urn for urn, engine in engine_urns(base).items()}
    engine = _Engine(head, olds)
    matches, taken = Matches(), set[str]()
    for resource in head.resources:  # in registration order: parents first
        urn = engine.urns[resource["urn"]]
        if urn in olds and urn not in taken:
            matches.by_urn[resource["urn"]] = olds[urn]
            taken.add(urn)
            continue
        for alias in engine.aliases(resource):
            if alias in olds and alias not in taken:
                matches.by_alias[resource["urn"]] = olds[alias]
                matches.old_urns[resource["urn"]] = alias
                engine.moved[urn] = alias
                taken.add(alias)
                break
    return matches
