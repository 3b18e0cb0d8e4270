"""What the daily drift workflow compares, from a stack's exported state (README "CI workflows").

The drift job runs as the read-only CI identity, which cannot reach the AKS API server
(its address is in no authorized range, and prod's is private), so it does not run
``pulumi preview --refresh``: refreshing a Kubernetes resource against an unreachable
cluster is an error (pulumi-kubernetes#1522). It checks the two halves apart:

- ``azure-targets STATE``: the URNs of the stack's Azure resources, for
  ``pulumi refresh --preview-only --expect-no-changes --target ...`` (state against Azure,
  through ARM; no program run, no API server);
- ``kubernetes-request STATE DIR``: writes ``DIR/objects.yaml`` (every Kubernetes object the
  state holds, by kind, namespace and name) and ``DIR/list-objects.sh`` (one ``kubectl get``
  printing each object's field managers), for ``az aks command invoke``, which runs them in
  the cluster through ARM with the caller's Entra identity; prints the cluster's
  subscription, resource group and name;
- ``kubernetes-report STATE RESULT``: reads the command's JSON result and reports objects
  that are gone and objects a manager other than Pulumi or a known controller changed
  (``kubectl edit``, ``patch``, ``scale``, ``apply``, the portal). Exit 1 on drift, 2 when
  the command itself failed.

    python scripts/ci/drift.py azure-targets state.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

AZURE_PREFIX = "azure-native:"
KUBERNETES_PREFIX = "kubernetes:"
# Not Kubernetes objects of their own: a Helm release's objects are not in the state.
NOT_OBJECTS = ("kubernetes:helm.sh/", "kubernetes:yaml")
# The read-only identity may not read Secrets (its role leaves them out); recplat creates none.
UNREADABLE_KINDS = frozenset({"Secret"})
PULUMI_MANAGER_PREFIX = "pulumi-kubernetes"
# Controllers that write to objects recplat creates as part of their normal work; a field
# they own is not drift. Status subresource writes are never drift.
KNOWN_CONTROLLERS = {
    "kube-controller-manager": "HPA scaling, Deployment revisions, CronJob and Job bookkeeping",
    "cloud-controller-manager": "the load balancer finalizer on Services",
    "kopf": "the Dask operator records the configuration it handled on DaskCluster objects",
}
FIELD_SEPARATOR = "\t"
# One line per object: kind, namespace, name, then manager/operation/subresource entries.
# kubectl's JSONPath unquotes "\t" and "\n" literals; the script passes it in single quotes.
JSONPATH = (
    '{range .items[*]}{.kind}{"\\t"}{.metadata.namespace}{"\\t"}{.metadata.name}{"\\t"}'
    '{range .metadata.managedFields[*]}{.manager}/{.operation}/{.subresource} {end}{"\\n"}{end}'
)


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One Kubernetes object: what ``kubectl get -f`` needs to find it."""

    kind: str
    namespace: str
    name: str
    api_version: str = ""

    @property
    def label(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)


def resources(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources of a ``pulumi stack export`` document."""
    return list((state.get("deployment") or {}).get("resources") or [])


def azure_targets(state: dict[str, Any]) -> list[str]:
    """URNs of the Azure resources (custom resources of pulumi-azure-native)."""
    return [
        str(r["urn"])
        for r in resources(state)
        if r.get("custom") and str(r.get("type", "")).startswith(AZURE_PREFIX)
    ]


def _metadata_field(resource: dict[str, Any], field: str) -> str:
    for source in ("outputs", "inputs"):
        metadata = (resource.get(source) or {}).get("metadata") or {}
        value = metadata.get(field)
        if isinstance(value, str) and value:
            return value
    return ""


def kubernetes_objects(state: dict[str, Any]) -> list[ObjectRef]:
    """Every Kubernetes object the stack manages, as the state records it."""
    found = []
    for resource in resources(state):
        kind_type = str(resource.get("type", ""))
        if (
            not resource.get("custom")
            or not kind_type.startswith(KUBERNETES_PREFIX)
            or kind_type.startswith(NOT_OBJECTS)
        ):
            continue
        group_version, _, kind = kind_type.removeprefix(KUBERNETES_PREFIX).rpartition(":")
        if kind in UNREADABLE_KINDS:
            continue
        group, _, version = group_version.rpartition("/")
        api_version = version if group in ("", "core") else f"{group}/{version}"
        name = _metadata_field(resource, "name")
        if not name:
            raise ValueError(f"{resource['urn']}: the state records no metadata.name")
        found.append(ObjectRef(kind, _metadata_field(resource, "namespace"), name, api_version))
    return sorted(found)


def cluster_of(state: dict[str, Any]) -> tuple[str, str, str]:
    """Subscription, resource group and name of the stack's AKS cluster."""
    clusters = [
        str(r.get("id", ""))
        for r in resources(state)
        if r.get("type") == "azure-native:containerservice:ManagedCluster"
    ]
    if len(clusters) != 1 or "/resourceGroups/" not in clusters[0]:
        raise ValueError(f"expected one ManagedCluster with an ARM id in the state, got {clusters}")
    parts = clusters[0].strip("/").split("/")
    lowered = [part.lower() for part in parts]
    subscription = parts[lowered.index("subscriptions") + 1]
    group = parts[lowered.index("resourcegroups") + 1]
    return subscription, group, parts[-1]


def write_request(objects: list[ObjectRef], directory: Path) -> None:
    """``objects.yaml`` and the script that lists their field managers, for command invoke."""
    directory.mkdir(parents=True, exist_ok=True)
    documents = [
        {
            "apiVersion": ref.api_version,
            "kind": ref.kind,
            "metadata": {
                "name": ref.name,
                **({"namespace": ref.namespace} if ref.namespace else {}),
            },
        }
        for ref in objects
    ]
    (directory / "objects.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))
    (directory / "list-objects.sh").write_text(
        "#!/bin/sh\n"
        "# Written by scripts/ci/drift.py; runs in the cluster (az aks command invoke).\n"
        "exec kubectl get -f objects.yaml --ignore-not-found --show-managed-fields "
        f"-o 'jsonpath={JSONPATH}'\n"
    )


@dataclass(frozen=True)
class Finding:
    """An object that differs from what Pulumi applied."""

    ref: ObjectRef
    problem: str


def _command_logs(result: dict[str, Any]) -> tuple[int, str]:
    properties = result.get("properties") or result
    code = properties.get("exitCode", properties.get("exit_code"))
    return (int(code) if code is not None else -1), str(properties.get("logs") or "")


def drift_findings(objects: list[ObjectRef], logs: str) -> tuple[list[Finding], list[str]]:
    """Objects missing from the cluster or changed by another manager; and unreadable lines."""
    expected = {ref.key: ref for ref in objects}
    seen: set[tuple[str, str, str]] = set()
    findings, unreadable = [], []
    for line in logs.splitlines():
        if not line.strip():
            continue
        fields = line.split(FIELD_SEPARATOR)
        if len(fields) != 4 or (fields[0], fields[1], fields[2]) not in expected:
            unreadable.append(line)
            continue
        key = (fields[0], fields[1], fields[2])
        seen.add(key)
        for entry in fields[3].split():
            manager, _, rest = entry.partition("/")
            operation, _, subresource = rest.partition("/")
            if subresource == "status" or manager.startswith(PULUMI_MANAGER_PREFIX):
                continue
            if manager in KNOWN_CONTROLLERS:
                continue
            where = f" ({subresource})" if subresource else ""
            findings.append(Finding(expected[key], f"changed by {manager} ({operation}){where}"))
    findings += [
        Finding(ref, "missing from the cluster") for key, ref in expected.items() if key not in seen
    ]
    return sorted(findings, key=lambda finding: finding.ref), unreadable


def report(objects: list[ObjectRef], result: dict[str, Any]) -> tuple[int, str]:
    """Markdown for the job summary, and the exit code."""
    code, logs = _command_logs(result)
    findings, unreadable = drift_findings(objects, logs)
    lines = [f"### Kubernetes objects ({len(objects)} in the state)", ""]
    if code != 0:
        lines += [f"`kubectl` in the cluster exited {code}:", "", "```", logs.strip(), "```"]
        return 2, "\n".join(lines)
    if unreadable:
        lines += ["Lines that name no object of the state:", "", "```", *unreadable, "```", ""]
    if not findings and not unreadable:
        lines.append("No drift: every object is there, changed only by Pulumi and controllers.")
        return 0, "\n".join(lines)
    lines += ["| object | drift |", "| --- | --- |"]
    lines += [f"| {finding.ref.label} | {finding.problem} |" for finding in findings]
    return 1, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    targets = commands.add_parser("azure-targets")
    targets.add_argument("state", type=Path)
    request = commands.add_parser("kubernetes-request")
    request.add_argument("state", type=Path)
    request.add_argument("directory", type=Path)
    result = commands.add_parser("kubernetes-report")
    result.add_argument("state", type=Path)
    result.add_argument("result", type=Path)
    args = parser.parse_args(argv)
    state = json.loads(args.state.read_text())
    if args.command == "azure-targets":
        print("\n".join(azure_targets(state)))
        return 0
    objects = kubernetes_objects(state)
    if args.command == "kubernetes-request":
        write_request(objects, args.directory)
        print(" ".join(cluster_of(state)))
        return 0
    code, markdown = report(objects, json.loads(args.result.read_text()))
    print(markdown)
    return code


if __name__ == "__main__":
    sys.exit(main())
