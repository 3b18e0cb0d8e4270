"""``recplat plan`` as a user runs it: the summary, exit codes and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from recplat.plan import Plan
from tests.infra.plan_queries import REPO_ROOT


def _plan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recplat", "plan", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_plans_of_two_stacks_in_one_process_stay_apart(environment_plans: dict[str, Plan]) -> None:
    for stack, plan in environment_plans.items():
        foreign = [
            r["urn"] for r in plan.resources if not r["urn"].startswith(f"urn:pulumi:{stack}::")
        ]
        assert foreign == [], f"stack {stack} holds resources of another plan: {foreign[:3]}"
    assert environment_plans["dev"].outputs["clusterName"] == "aks-recplat-dev"
    assert environment_plans["prod"].outputs["clusterName"] == "aks-recplat-prod"


def test_stack_outputs_are_real_looking_values(environment_plans: dict[str, Plan]) -> None:
    outputs = environment_plans["prod"].outputs
    assert outputs["oidcIssuerUrl"].startswith("https://westeurope.oic.prod-aks.azure.com/")
    assert outputs["mlflowTrackingUri"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert outputs["grafanaUrl"].startswith("https://grafana-prod-")
    assert outputs["lakeAccountName"].startswith("strecplatprod")
    assert outputs["resourceGroupName"] == "rg-recplat-prod"


def test_prod_plan_prints_components_brands_and_passes_the_policy_pack(tmp_path: Path) -> None:
    result = _plan("--stack", "prod", "--json", str(tmp_path / "plan.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    for heading in (
        "recplat plan: stack prod",
        "Cluster",
        "MlflowServer",
        "newsroom",
        "0 mandatory",
    ):
        assert heading in result.stdout
    written = json.loads((tmp_path / "plan.json").read_text())
    assert {"urn", "type", "name", "parent", "inputs"} <= set(written["resources"][0])
    # The summary and the policy pack agree on what they count.
    custom = sum(1 for r in written["resources"] if r["custom"])
    everything = len(written["resources"])
    assert f"{custom} resources to create" in result.stdout
    assert f"{everything} with the {everything - custom} components" in result.stdout
    assert f"over {everything} resources" in result.stdout


def test_an_unknown_stack_is_an_error_naming_the_known_ones() -> None:
    result = _plan("--stack", "qa")
    assert result.returncode == 2
    assert "Pulumi.qa.yaml: no such stack file; known stacks: dev, prod" in result.stderr
    assert "Traceback" not in result.stderr
