"""The rules every GitHub workflow in `.github/workflows/` must follow, as functions.

Each returns the violations it finds (empty when the workflow is fine), so the
tests can run them on the shipped workflows and on deliberately broken ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

# `uses: owner/repo[/path]@<40 hex> # v1.2.3`: a full commit, with the release it is.
PINNED_USES = re.compile(
    r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w./-]+)@(?P<ref>\S+)(?P<comment>\s+#\s*(?P<version>v\d+(?:\.\d+)*))?\s*$"
)
ANY_USES = re.compile(r"^\s*(?:-\s+)?uses:\s+(?P<target>\S+)")
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
SECRET_REFERENCE = re.compile(r"secrets\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)")
# The one stored secret a workflow may read: a Pulumi Cloud token, when that backend is used.
ALLOWED_SECRETS = frozenset({"PULUMI_ACCESS_TOKEN"})
# Ways to hand Azure a long-lived credential instead of an OIDC token.
AZURE_SECRET_INPUTS = ("creds", "client-secret", "auth-type")


def load(path: Path) -> dict[str, Any]:
    """A workflow as data; PyYAML reads the `on:` key as True, so it is restored."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in document:
        document["on"] = document.pop(True)
    return dict(document)


def steps(job: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from job.get("steps", [])


def action_name(step: dict[str, Any]) -> str:
    """`owner/repo` of a step's action, without the ref ('' for `run:` steps)."""
    return str(step.get("uses", "")).split("@", 1)[0]


def unpinned_actions(text: str) -> list[str]:
    """Every `uses:` line that is not a full commit SHA followed by a `# vX.Y.Z` comment."""
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        any_use = ANY_USES.match(line)
        if any_use is None or any_use["target"].startswith("./"):
            continue
        pinned = PINNED_USES.match(line)
        if pinned is None or not FULL_SHA.match(pinned["ref"]):
            problems.append(f"line {number}: {line.strip()}: pin the action to a full commit SHA")
        elif pinned["version"] is None:
            problems.append(f"line {number}: {line.strip()}: add the release as `# vX.Y.Z`")
    return problems


def inconsistent_pins(texts: list[str]) -> list[str]:
    """Actions pinned to different commits in different places."""
    seen: dict[str, set[str]] = {}
    for text in texts:
        for line in text.splitlines():
            pinned = PINNED_USES.match(line)
            if pinned is not None:
                seen.setdefault(pinned["action"], set()).add(pinned["ref"])
    return [f"{action}: {sorted(refs)}" for action, refs in seen.items() if len(refs) > 1]


def forbidden_secrets(text: str) -> list[str]:
    """Stored secrets other than the allowed ones, and any Azure client secret input."""
    problems = [
        f"secrets.{match['name']}"
        for match in SECRET_REFERENCE.finditer(text)
        if match["name"] not in ALLOWED_SECRETS
    ]
    problems += [
        word for word in ("CLIENT_SECRET", "AZURE_CREDENTIALS", "client-secret") if word in text
    ]
    return problems


def azure_logins_without_oidc(workflow: dict[str, Any]) -> list[str]:
    """Jobs that log in to Azure without an OIDC token or with a stored credential."""
    problems = []
    top_permissions = workflow.get("permissions") or {}
    for name, job in workflow["jobs"].items():
        logins = [step for step in steps(job) if action_name(step) == "azure/login"]
        if not logins:
            continue
        permissions = job.get("permissions", top_permissions) or {}
        if permissions.get("id-token") != "write":
            problems.append(f"job {name}: azure/login needs `permissions: id-token: write`")
        for step in logins:
            inputs = step.get("with") or {}
            for needed in ("client-id", "tenant-id", "subscription-id"):
                if needed not in inputs:
                    problems.append(f"job {name}: azure/login lacks `{needed}`")
            for stored in AZURE_SECRET_INPUTS:
                if stored in inputs:
                    problems.append(f"job {name}: azure/login sets `{stored}`; use OIDC only")
    return problems


def pulumi_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in steps(job) if action_name(step) == "pulumi/actions"]


def matrix_stacks(job: dict[str, Any]) -> list[str]:
    return list(job.get("strategy", {}).get("matrix", {}).get("stack", []))


def stacks_run(job: dict[str, Any], command: str, work_dir: str | None = None) -> set[str]:
    """The stacks of one project a job runs `pulumi <command>` on, expanding
    `${{ matrix.stack }}`: the environment (root) project, or the one in `work_dir`."""
    found: set[str] = set()
    for step in pulumi_steps(job):
        inputs = step.get("with") or {}
        if inputs.get("command") != command or inputs.get("work-dir") != work_dir:
            continue
        stack = str(inputs.get("stack-name", ""))
        found.update(matrix_stacks(job) if "matrix.stack" in stack else [stack])
    return found


def ungated_prod_updates(workflow: dict[str, Any]) -> list[str]:
    """Jobs that run `pulumi up` on a prod stack (any project) outside the `prod` environment."""
    problems = []
    for name, job in workflow["jobs"].items():
        projects = {str((step.get("with") or {}).get("work-dir")) for step in pulumi_steps(job)}
        work_dirs = [None if project == "None" else project for project in projects]
        if not any("prod" in stacks_run(job, "up", work_dir) for work_dir in work_dirs):
            continue
        environment = job.get("environment")
        environment_name = environment.get("name") if isinstance(environment, dict) else environment
        if environment_name != "prod":
            problems.append(f"job {name}: `pulumi up` on prod must run in `environment: prod`")
    return problems


def read_only_jobs(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Jobs outside any GitHub environment: they get the repository's read-only identity."""
    return {name: job for name, job in workflow["jobs"].items() if not job.get("environment")}


def kubernetes_refreshes(workflow: dict[str, Any]) -> list[str]:
    """Read-only jobs that would refresh the environment stack's Kubernetes resources: a
    `pulumi/actions` preview or refresh with `refresh: true` or command `refresh`, or a
    `pulumi refresh` / `--refresh` in a `run:` step, on the environment project (not
    `registry/`), not limited with `--target`. The read-only identity cannot reach the API
    server, and pulumi-kubernetes fails a refresh of an unreachable cluster."""
    problems = []
    for name, job in read_only_jobs(workflow).items():
        for step in steps(job):
            inputs = step.get("with") or {}
            if action_name(step) == "pulumi/actions" and inputs.get("work-dir") in (
                None,
                ".",
                "./",
            ):
                refresh = str(inputs.get("refresh", "false")).lower() == "true"
                if inputs.get("command") == "refresh" or refresh:
                    problems.append(f"job {name}: pulumi/actions refreshes {inputs.get('command')}")
            run = str(step.get("run", ""))
            if re.search(
                r"pulumi (refresh|preview|up)\b[^\n]*--refresh|pulumi refresh\b", run
            ) and ("--target" not in run):
                problems.append(f"job {name}: `{run.strip().splitlines()[0]}` refreshes everything")
    return problems
