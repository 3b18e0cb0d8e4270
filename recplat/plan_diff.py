"""``recplat plan --diff REF``: what a change would do to a stack, grouped by brand, offline.

The working tree and the tree at git ref REF (exported with ``git archive``, so the
repository's state is never touched) are each planned by ``recplat.plan`` under
mocks, in parallel child processes. Resources are matched as the engine matches them,
by URN and then by alias (``recplat.plan_aliases``), and reported as added, changed
(with each changed input), moved (found by an alias: same cloud resource, new URN, with
any changed input) or removed, per brand and for the environment. Component resources
hold no cloud resource, so the summary counts them apart. No cloud credentials are
involved, so this runs on pull requests from forks; ``--markdown FILE`` writes the same
report for a PR comment or a job summary.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from recplat.plan import Plan, PlanError, plan_stack
from recplat.plan_aliases import match_resources

ENVIRONMENT_GROUP = "(environment)"
MAX_VALUE_CHARS = 120
MAX_MARKDOWN_ROWS = 200
"""GitHub comments are capped at 65536 characters; beyond this the details are summarised."""


@dataclass(frozen=True)
class InputChange:
    """One input of one resource: its dotted path and the value before and after."""

    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class ResourceChange:
    urn: str
    type: str
    name: str
    action: str
    """``add``, ``change``, ``move`` (found by an alias) or ``remove``."""
    inputs: list[InputChange] = field(default_factory=list)
    component: bool = False
    """A component resource: a grouping in the state, nothing in the cloud."""
    moved_from: str = ""
    """For ``move``: the deployed resource's URN (as the engine spells it) that it takes over."""

    @property
    def symbol(self) -> str:
        symbol = _SYMBOLS[self.action]
        return f"({symbol})" if self.component else symbol


@dataclass
class PlanDiff:
    """Resource changes between two plans of one stack, grouped by brand."""

    stack: str
    ref: str
    groups: dict[str, list[ResourceChange]] = field(default_factory=dict)
    note: str = ""

    def count(self, action: str, group: str | None = None, *, components: bool = False) -> int:
        """Changes of ``action``: to resources, or with ``components`` to components only."""
        changes = (
            self.groups.get(group, [])
            if group is not None
            else [c for group_changes in self.groups.values() for c in group_changes]
        )
        return sum(
            1 for change in changes if change.action == action and change.component == components
        )

    @property
    def empty(self) -> bool:
        return not any(self.groups.values())


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested inputs as ``{"spec.template.spec.containers[0].image": ...}``."""
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    # A list of plain values (zones, prefixes, args) reads best as one value.
    if isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        flat = {}
        for index, item in enumerate(value):
            flat.update(_flatten(item, f"{prefix}[{index}]"))
        return flat
    return {prefix: value}


def changed_inputs(before: dict[str, Any], after: dict[str, Any]) -> list[InputChange]:
    """Every leaf input that differs, added or removed, in path order."""
    old, new = _flatten(before), _flatten(after)
    return [
        InputChange(path, old.get(path), new.get(path))
        for path in sorted(old.keys() | new.keys())
        if old.get(path) != new.get(path)
    ]


def _group(plan: Plan, urn: str) -> str:
    return plan.brand_of(urn) or ENVIRONMENT_GROUP


def compare_plans(base: Plan, head: Plan, ref: str) -> PlanDiff:
    """What applying ``head`` to a stack deployed from ``base`` would do."""
    before, after = base.by_urn(), head.by_urn()
    matches = match_resources(base, head)
    diff = PlanDiff(stack=head.stack, ref=ref)

    def add(plan: Plan, resource: dict[str, Any], action: str, **details: Any) -> None:
        change = ResourceChange(
            resource["urn"], resource["type"], resource["name"], action,
            component=not resource["custom"], **details,
        )  # fmt: skip
        diff.groups.setdefault(_group(plan, change.urn), []).append(change)

    claimed = {*matches.by_urn.values(), *matches.by_alias.values()}
    for urn in sorted(after.keys() - matches.by_urn.keys() - matches.by_alias.keys()):
        add(head, after[urn], "add")
    for urn in sorted(before.keys() - claimed):
        add(base, before[urn], "remove")
    for urn, old in sorted(matches.by_urn.items()):
        inputs = changed_inputs(before[old]["inputs"], after[urn]["inputs"])
        if inputs:
            add(head, after[urn], "change", inputs=inputs)
    for urn, old in sorted(matches.by_alias.items()):
        inputs = changed_inputs(before[old]["inputs"], after[urn]["inputs"])
        add(head, after[urn], "move", inputs=inputs, moved_from=matches.old_urns[urn])
    diff.groups = dict(
        sorted(diff.groups.items(), key=lambda item: (item[0] == ENVIRONMENT_GROUP, item[0]))
    )
    return diff


def _show(value: Any) -> str:
    text = "(none)" if value is None else json.dumps(value, sort_keys=True)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


_SYMBOLS = {"add": "+", "change": "~", "move": ">", "remove": "-"}
_ACTIONS = ("add", "change", "remove", "move")


def _counts(diff: PlanDiff, group: str | None = None, *, always: bool = False) -> str:
    """``1 to add, ..., 3 to move (alias)``, then the components added or removed."""
    resources = [
        f"{diff.count(action, group)} to {action}" + (" (alias)" if action == "move" else "")
        for action in _ACTIONS
        if always or diff.count(action, group)
    ]
    components = [
        f"{diff.count(action, group, components=True)} {label}"
        for action, label in (("add", "added"), ("remove", "removed"), ("move", "moved"))
        if diff.count(action, group, components=True)
    ]
    if components:
        resources.append("components (no cloud resources): " + ", ".join(components))
    return ", ".join(resources)


def _group_title(diff: PlanDiff, group: str) -> str:
    label = "environment" if group == ENVIRONMENT_GROUP else f"brand {group}"
    return f"{label}: {_counts(diff, group)}"


def _describe(change: ResourceChange) -> str:
    what = f"{change.type}  {change.name}"
    return f"{what}  (moved from {change.moved_from})" if change.moved_from else what


def render_text(diff: PlanDiff) -> str:
    """The diff for a terminal."""
    lines = [f"recplat plan --diff {diff.ref} (stack {diff.stack}): {_counts(diff, always=True)}"]
    if diff.note:
        lines.append(f"note: {diff.note}")
    if diff.empty:
        lines.append("No changes.")
    for group, changes in diff.groups.items():
        lines.append("")
        lines.append(_group_title(diff, group))
        for change in changes:
            lines.append(f"  {change.symbol} {_describe(change)}")
            lines.extend(
                f"      {item.path}: {_show(item.before)} -> {_show(item.after)}"
                for item in change.inputs
            )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(diff: PlanDiff) -> str:
    """The diff for a pull request comment or a job summary."""
    lines = [
        f"### `recplat plan` for stack `{diff.stack}` against `{diff.ref}`",
        "",
        f"**{diff.count('add')}** to add, **{diff.count('change')}** to change, "
        f"**{diff.count('remove')}** to remove, **{diff.count('move')}** to move (alias). "
        "Planned offline under mocks; no cloud credentials were used.",
        "",
    ]
    if diff.note:
        lines += [f"> {diff.note}", ""]
    if diff.empty:
        lines.append("No changes.")
        return "\n".join(lines) + "\n"
    lines += [
        "| group | add | change | remove | move (alias) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for group in diff.groups:
        label = "environment" if group == ENVIRONMENT_GROUP else f"brand `{group}`"
        counts = (diff.count(action, group) for action in _ACTIONS)
        lines.append(f"| {label} | " + " | ".join(map(str, counts)) + " |")
    rows = 0
    for group, changes in diff.groups.items():
        lines += ["", f"<details><summary>{_group_title(diff, group)}</summary>", ""]
        for change in changes:
            rows += 1 + len(change.inputs)
            if rows > MAX_MARKDOWN_ROWS:
                break
            lines.append(f"- `{change.symbol}` `{change.type}` **{change.name}**")
            lines.extend(
                f"  - `{_cell(item.path)}`: `{_cell(_show(item.before))}` → "
                f"`{_cell(_show(item.after))}`"
                for item in change.inputs
            )
        lines += ["", "</details>"]
    if rows > MAX_MARKDOWN_ROWS:
        lines += ["", f"_Details cut at {MAX_MARKDOWN_ROWS} lines; run the command for all._"]
    return "\n".join(lines) + "\n"


def _git(repo: Path, *args: str) -> bytes:
    process = subprocess.run(["git", *args], cwd=repo, capture_output=True, check=False)
    if process.returncode != 0:
        message = process.stderr.decode(errors="replace").strip() or "failed"
        raise PlanError(f"git {' '.join(args)}: {message}")
    return process.stdout


def _verify_ref(repo: Path, ref: str) -> None:
    """A mistyped or unfetched ref fails here, in a second, not after two plans."""
    try:
        _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except PlanError:
        raise PlanError(
            f"--diff {ref}: no such commit in {repo}; check the name or fetch it first "
            "(in CI: `git fetch origin main` and a checkout with fetch-depth: 0)"
        ) from None


def export_ref(repo: Path, ref: str, destination: Path) -> None:
    """Write the tree at ``ref`` into ``destination`` without touching the repository."""
    archive = _git(repo, "archive", "--format=tar", ref)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")


def plan_ref(repo: Path, stack: str, ref: str, scratch: Path) -> tuple[Plan, str]:
    """The plan of ``stack`` at ``ref``; an empty plan when that tree has no program yet."""
    tree = scratch / "base"
    tree.mkdir()
    export_ref(repo, ref, tree)
    if (
        not (tree / "infra" / "__main__.py").is_file()
        or not (tree / "recplat" / "plan.py").is_file()
    ):
        return Plan(stack, [], {}), f"{ref} has no Pulumi program yet: every resource is new"
    return plan_stack(stack, repo_root=tree), ""


def run_plan_diff(stack: str, ref: str, markdown: Path | None) -> int:
    """Print (and optionally write as Markdown) the plan diff of the working tree against REF."""
    try:
        repo = Path(_git(Path.cwd(), "rev-parse", "--show-toplevel").decode().strip())
        _verify_ref(repo, ref)
        with (
            tempfile.TemporaryDirectory(prefix="recplat-diff-") as scratch,
            ThreadPoolExecutor(2) as pool,
        ):
            base_future = pool.submit(plan_ref, repo, stack, ref, Path(scratch))
            head_future = pool.submit(plan_stack, stack, None, repo)
            base, note = base_future.result()
            head = head_future.result()
    except PlanError as error:
        typer.echo(f"error: {error}", err=True)
        return 2
    diff = compare_plans(base, head, ref)
    diff.note = note
    typer.echo(render_text(diff), nl=False)
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(render_markdown(diff))
        typer.echo(f"wrote the diff as Markdown to {markdown}")
    return 0
