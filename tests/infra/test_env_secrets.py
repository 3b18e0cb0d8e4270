"""No secret reaches plan output, inputs or manifests in plain text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from recplat.plan import SECRET_MASK, Plan
from tests.infra.plan_queries import REPO_ROOT, one

STACKS = ["dev", "prod"]


@pytest.mark.parametrize("stack", STACKS)
def test_generated_passwords_appear_nowhere_in_the_plan_json(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    plan = environment_plans[stack]
    assert len(plan.generated_secrets) == 3, "database, MLflow admin and Flask key passwords"
    text = json.dumps(plan.to_json())
    for secret in plan.generated_secrets:
        assert secret not in text
    for resource in plan.resources:
        leaked = [s for s in plan.generated_secrets if s in json.dumps(resource["inputs"])]
        assert not leaked, f"{resource['urn']} carries a generated secret in plain text"


@pytest.mark.parametrize("stack", STACKS)
def test_key_vault_secret_values_and_the_db_password_are_masked(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    plan = environment_plans[stack]
    for secret in plan.of_type("azure-native:keyvault:Secret"):
        properties = secret["inputs"]["properties"]
        # The engine marks the whole object secret when one of its fields is.
        value = properties if isinstance(properties, str) else properties.get("value")
        assert value == SECRET_MASK, secret["urn"]
    server = one(plan, "azure-native:dbforpostgresql:Server")
    assert server["inputs"]["administratorLoginPassword"] == SECRET_MASK, server["urn"]
    assert plan.outputs["kubeconfig"] == SECRET_MASK


def test_cli_output_json_and_manifests_hold_no_secret(
    environment_plans: dict[str, Plan], tmp_path: Path
) -> None:
    brands = tmp_path / "brands"
    brands.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "recplat",
            "plan",
            "--stack",
            "prod",
            "--brands-dir",
            str(brands),
            "--json",
            str(tmp_path / "plan.json"),
            "--manifests",
            str(tmp_path / "manifests"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Mock secrets derive from URNs, so this empty-brands plan made the same ones.
    secrets = environment_plans["prod"].generated_secrets
    written = [result.stdout, result.stderr, (tmp_path / "plan.json").read_text()]
    written += [path.read_text() for path in (tmp_path / "manifests").iterdir()]
    for text in written:
        for secret in secrets:
            assert secret not in text
    assert "kind: Deployment" in "".join(written)
