"""The offline plan: run the real Pulumi program under mocks and report what it would create.

``plan_stack`` runs ``infra/__main__.py`` for one stack, with that stack's
``Pulumi.<stack>.yaml`` as config and ``infra.plan_mocks`` standing in for Azure,
in a fresh Python process: Pulumi's runtime keeps global state (root stack,
config, pending outputs), and a child process is the one reset that is complete.
Every registered resource comes back with its URN, type, name, parent, its
camelCase inputs (secrets masked as ``[secret]``) and ``dependencies``: the URNs
``pulumi up`` waits for before creating it. The engine's request carries the
explicit ``depends_on`` and the provider, but under mocks its property
dependencies are empty, so a resource transform reads the resources behind every
``Output`` in the inputs instead (``_OutputDependencies``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECRET_MASK = "[secret]"  # noqa: S105 - a name, not a secret
PROJECT = "recplat"
BRAND_STACK_TYPE = "recplat:brand:BrandStack"
ENVIRONMENT_TYPE = "recplat:environment:Environment"


class PlanError(Exception):
    """The plan could not run; the message says why and how to fix it."""


@dataclass(frozen=True)
class Plan:
    """What ``pulumi up`` would create for one stack."""

    stack: str
    resources: list[dict[str, Any]]
    """Each: ``urn``, ``type``, ``name``, ``parent``, ``custom``, ``inputs``,
    ``dependencies`` (URNs: explicit ``depends_on``, provider, resources whose outputs feed it)."""
    outputs: dict[str, Any]
    generated_secrets: list[str] = field(default_factory=list, repr=False)
    """Secret values the mocks generated; only for proving they never leak into output."""

    def by_urn(self) -> dict[str, dict[str, Any]]:
        """Resources keyed by URN."""
        return {resource["urn"]: resource for resource in self.resources}

    def of_type(self, token: str) -> list[dict[str, Any]]:
        """Every resource of Pulumi type ``token``."""
        return [resource for resource in self.resources if resource["type"] == token]

    def brand_of(self, urn: str) -> str | None:
        """The brand a resource belongs to (its BrandStack ancestor's name), if any."""
        index = self.by_urn()
        current = index.get(urn)
        while current is not None:
            if current["type"] == BRAND_STACK_TYPE:
                return str(current["name"])
            current = index.get(current["parent"] or "")
        return None

    def component_of(self, urn: str) -> str:
        """The environment component (``Network``...) or ``brand:<name>`` that owns ``urn``."""
        index = self.by_urn()
        current = index.get(urn)
        label = "Stack"
        while current is not None:
            parent = index.get(current["parent"] or "")
            if current["type"] == BRAND_STACK_TYPE:
                return f"brand:{current['name']}"
            if parent is not None and parent["type"] == ENVIRONMENT_TYPE:
                return (
                    str(current["type"]).rsplit(":", 1)[-1]
                    if not current["custom"]
                    else "Environment"
                )
            if current["type"] == ENVIRONMENT_TYPE:
                label = "Environment"
            current = parent
        return label

    def to_json(self) -> dict[str, Any]:
        """The plan as written by ``--json``: every resource with its masked inputs."""
        return {
            "stack": self.stack,
            "outputs": self.outputs,
            "resources": [
                {
                    key: resource[key]
                    for key in ("urn", "type", "name", "parent", "custom", "inputs", "dependencies")
                }
                for resource in self.resources
            ],
        }


def _config_value(value: Any) -> str:
    """Pulumi hands config to programs as strings; objects and lists as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def stack_config(repo_root: Path, stack: str) -> tuple[dict[str, str], list[str]]:
    """``Pulumi.<stack>.yaml`` as the engine would pass it: namespaced keys, string values."""
    import yaml

    path = repo_root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml")
            for p in repo_root.glob("Pulumi.*.yaml")
        )
        raise PlanError(f"{path}: no such stack file; known stacks: {', '.join(known) or 'none'}")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise PlanError(f"{path}: not valid YAML: {error}") from None
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (document.get("config") or {}).items():
        full_key = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            # Encrypted values cannot be read offline; a placeholder keeps the program running.
            config[full_key] = SECRET_MASK
            secret_keys.append(full_key)
        else:
            config[full_key] = _config_value(value)
    return config, secret_keys


def plan_stack(stack: str, brands_dir: Path | None = None, repo_root: Path | None = None) -> Plan:
    """Run the program for ``stack`` offline and return every resource it registers.

    ``repo_root`` (default: the current directory) holds ``Pulumi.<stack>.yaml`` and the
    ``infra`` package that is run; ``brands_dir`` defaults to ``<repo_root>/brands``.
    """
    root = (repo_root or Path.cwd()).resolve()
    stack_config(root, stack)  # fail early, in this process, with the file's name
    env = {
        **os.environ,
        "RECPLAT_BRANDS_DIR": str((brands_dir or root / "brands").resolve()),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
        # The program imports ~1500 modules (pulumi-azure-native alone is huge); compiling
        # them again on every plan costs ~10 s, so their bytecode is cached under .scratch
        # even where the caller's environment turns bytecode writing off.
        "PYTHONPYCACHEPREFIX": str(_bytecode_cache()),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="recplat-plan-") as scratch:
        result_file = Path(scratch) / "plan.json"
        process = subprocess.run(
            [sys.executable, "-m", "recplat.plan", stack, str(root), str(result_file)],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        if process.returncode != 0 or not result_file.exists():
            detail = process.stderr.strip().splitlines()
            raise PlanError(
                f"the Pulumi program failed for stack {stack!r}:\n" + "\n".join(detail[-25:])
            )
        data = json.loads(result_file.read_text())
    return Plan(stack, data["resources"], data["outputs"], data["generated_secrets"])


def _bytecode_cache() -> Path:
    """Where plan workers keep compiled bytecode: the project's scratch area."""
    project_root = Path(__file__).resolve().parent.parent
    return project_root / ".scratch" / "plan-pycache"


def _masked(value: Any) -> Any:
    """``value`` with every Pulumi secret replaced by ``[secret]``, JSON-safe."""
    from pulumi.runtime import rpc

    if rpc.is_rpc_secret(value):
        return SECRET_MASK
    if isinstance(value, Mapping):
        return {str(key): _masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        # Numbers cross the engine's protobuf Struct as doubles; Kubernetes wants integers.
        return int(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class _OutputDependencies:
    """A stack transformation that notes which resources' outputs feed each resource's inputs.

    The engine orders a resource after every resource behind an ``Output`` in its inputs;
    Pulumi's mocks drop those property dependencies from the request, so they are read
    here, where the inputs are still ``Output`` objects, and resolved to URNs once the
    program has finished.
    """

    def __init__(self) -> None:
        self.pending: list[tuple[Any, list[Any]]] = []

    def __call__(self, args: Any) -> None:
        outputs: list[Any] = []
        _collect_outputs(args.props, outputs)
        self.pending.append((args.resource, outputs))
        return None

    def by_urn(self) -> dict[str, set[str]]:
        """Resource URN -> URNs of the resources whose outputs it reads."""
        from pulumi.runtime.sync_await import _sync_await

        result: dict[str, set[str]] = {}
        for resource, outputs in self.pending:
            urn = str(_sync_await(resource.urn.future()))
            feeding = result.setdefault(urn, set())
            for output in outputs:
                for source in _sync_await(output.resources()):
                    feeding.add(str(_sync_await(source.urn.future())))
        return result


def _collect_outputs(value: Any, found: list[Any]) -> None:
    """Every ``Output`` inside ``value`` (mappings, sequences and ``*Args`` objects)."""
    import pulumi

    if isinstance(value, pulumi.Output):
        found.append(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect_outputs(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_outputs(item, found)
    elif hasattr(value, "__dict__") and not isinstance(value, (pulumi.Resource, type)):
        for item in vars(value).values():
            _collect_outputs(item, found)


def _run_program(stack: str, root: Path) -> dict[str, Any]:
    """Inside the child process: set the mocks, run the program, collect resources."""
    import runpy

    import pulumi
    from pulumi.runtime import mocks, rpc, settings
    from pulumi.runtime.stack import wait_for_rpcs
    from pulumi.runtime.sync_await import _sync_await

    config, secret_keys = stack_config(root, stack)
    config.setdefault("azure-native:subscriptionId", _placeholder_subscription())
    subscription = config["azure-native:subscriptionId"]

    from infra.plan_mocks import AzureMocks

    azure = AzureMocks(subscription)
    recorded: list[dict[str, Any]] = []

    class RecordingMonitor(mocks.MockMonitor):
        """Keeps what the engine would receive: parent, type, name and raw inputs."""

        def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
            response = super().RegisterResource(request)
            if request.type != "pulumi:pulumi:Stack":
                recorded.append(
                    {
                        "urn": response.urn,
                        "type": request.type,
                        "name": request.name,
                        "parent": request.parent or None,
                        "custom": bool(request.custom),
                        "inputs": _masked(
                            rpc.deserialize_properties(request.object, keep_unknowns=True)
                        ),
                        "dependencies": sorted(
                            {
                                *request.dependencies,
                                # "<provider urn>::<provider id>"
                                *(
                                    [request.provider.rsplit("::", 1)[0]]
                                    if request.provider
                                    else []
                                ),
                            }
                        ),
                    }
                )
            return response

    pulumi.runtime.set_all_config(config, secret_keys)
    mocks.set_mocks(
        azure, project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(azure)
    )
    output_dependencies = _OutputDependencies()
    pulumi.runtime.register_stack_transformation(output_dependencies)
    runpy.run_path(str(root / "infra" / "__main__.py"), run_name="__main__")
    _sync_await(wait_for_rpcs())
    fed_by = output_dependencies.by_urn()
    for resource in recorded:
        resource["dependencies"] = sorted(
            {*resource["dependencies"], *fed_by.get(resource["urn"], set())} - {resource["urn"]}
        )

    outputs: dict[str, Any] = {}
    stack_resource = settings.get_root_resource()
    for name, value in getattr(stack_resource, "outputs", {}).items():
        output = pulumi.Output.from_input(value)
        secret = _sync_await(output.is_secret())
        outputs[name] = SECRET_MASK if secret else _masked(_sync_await(output.future()))
    return {"resources": recorded, "outputs": outputs, "generated_secrets": azure.secret_values}


def _placeholder_subscription() -> str:
    from infra.plan_mocks import PLACEHOLDER_SUBSCRIPTION

    return PLACEHOLDER_SUBSCRIPTION


def _worker_main(argv: list[str]) -> int:
    stack, root, result_file = argv
    result = _run_program(stack, Path(root))
    Path(result_file).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
