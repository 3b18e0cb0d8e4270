"""Runs the registry project (``registry/__main__.py``) under Pulumi's mocks, in a child process.

``python tests/infra/registry_plan.py <stack> <out.json>`` writes every registered resource
(type, name, inputs) and the stack outputs; ``plan_registry`` is the tests' entry point.
It reuses the offline plan's stand-in Azure (``infra.plan_mocks``), as ``recplat plan`` does
for the environment project.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
REGISTRY_DIR = REPO_ROOT / "registry"


def plan_registry(stack: str) -> dict[str, Any]:
    """Resources and outputs of ``pulumi up -C registry -s <stack>``, offline."""
    with tempfile.TemporaryDirectory(prefix="registry-plan-") as scratch:
        out = Path(scratch) / "plan.json"
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        result = subprocess.run(
            [sys.executable, str(Path(__file__)), stack, str(out)],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return dict(json.loads(out.read_text()))


def _run(stack: str, out: Path) -> None:
    import pulumi

    from infra.plan_mocks import PLACEHOLDER_SUBSCRIPTION, AzureMocks
    from infra.pulumi_internals import MockMonitor, engine_properties, output_value

    document = yaml.safe_load((REGISTRY_DIR / f"Pulumi.{stack}.yaml").read_text())
    config = {
        key: json.dumps(value) if isinstance(value, (bool, dict, list)) else str(value)
        for key, value in document["config"].items()
    }
    config.setdefault("azure-native:subscriptionId", PLACEHOLDER_SUBSCRIPTION)
    azure = AzureMocks(config["azure-native:subscriptionId"])
    recorded: list[dict[str, Any]] = []

    class Recording(MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)
            if request.type != "pulumi:pulumi:Stack":
                inputs = engine_properties(request.object)
                recorded.append({"type": request.type, "name": request.name, "inputs": inputs})
            return response

    pulumi.runtime.set_all_config(config)
    pulumi.runtime.set_mocks(
        azure, project="recplat-registry", stack=stack, preview=False, monitor=Recording(azure)
    )

    def program() -> None:
        runpy.run_path(str(REGISTRY_DIR / "__main__.py"), run_name="__main__")

    pulumi.runtime.test(program)()
    outputs = {
        name: output_value(pulumi.Output.from_input(value))
        for name, value in getattr(pulumi.runtime.get_root_resource(), "outputs", {}).items()
    }
    out.write_text(
        json.dumps({"resources": recorded, "outputs": outputs, "config": config}, default=str)
    )


if __name__ == "__main__":
    _run(sys.argv[1], Path(sys.argv[2]))
