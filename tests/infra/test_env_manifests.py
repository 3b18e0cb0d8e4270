"""The environment's Kubernetes objects pass the upstream schemas (strict) and checkov."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from recplat.plan import Plan
from recplat.plan_cli import kubernetes_manifest, write_manifests
from tests.infra.conftest import kubernetes_version

STACKS = ["dev", "prod"]
# CRDs installed by AKS add-ons; kubernetes-validate ships only the built-in schemas.
# NginxIngressController is checked against its CRD in tests/infra/test_ingress_tls.py.
CRD_KINDS = {"SecretProviderClass", "NginxIngressController"}
# Each skip says why the check does not apply to these objects.
CHECKOV_SKIPS = {
    # Images are pinned in stack config; `<repo>@sha256:<digest>` is accepted there and is
    # what release pipelines set. A tag keeps the example readable.
    "CKV_K8S_43",
    # IfNotPresent is right for immutable, pinned tags; Always adds a registry round trip
    # to every start without changing what runs.
    "CKV_K8S_15",
}


def test_kubernetes_version_is_one_kubernetes_validate_knows() -> None:
    for stack in STACKS:
        version = kubernetes_version(stack)
        assert version in kubernetes_validate.utils.all_versions(), (stack, version)


@pytest.mark.parametrize("stack", STACKS)
def test_every_manifest_passes_strict_schema_validation(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    manifests = {
        resource["urn"]: manifest
        for resource in environment_plans[stack].resources
        if (manifest := kubernetes_manifest(resource)) is not None
    }
    assert {m["kind"] for m in manifests.values()} >= {
        "Namespace",
        "ServiceAccount",
        "Deployment",
        "Service",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
        "SecretProviderClass",
    }
    version = kubernetes_version(stack)
    for urn, manifest in manifests.items():
        if manifest["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{urn}: {error.message} at {list(error.path)}")


@pytest.mark.parametrize("stack", STACKS)
def test_every_manifest_passes_checkov(
    environment_plans: dict[str, Plan], stack: str, tmp_path: Path
) -> None:
    uvx = shutil.which("uvx")
    assert uvx, "uvx (from uv) runs checkov in its own environment; install uv"
    write_manifests(environment_plans[stack].resources, tmp_path)
    # checkov's own pins conflict with the project lock, so it runs in a uv tool environment.
    result = subprocess.run(
        [
            uvx,
            "--from",
            "checkov",
            "checkov",
            "--directory",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
            "--skip-check",
            ",".join(sorted(CHECKOV_SKIPS)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = json.loads(result.stdout or "{}")
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{check['check_id']} {check['check_name']} in {Path(check['file_path']).name}"
        for entry in reports
        for check in entry.get("results", {}).get("failed_checks", [])
    ]
    assert (reports and reports[0].get("summary", {}).get("passed", 0) > 0) or not result.stdout, (
        result.stderr[-2000:]
    )
    assert failed == [], "\n".join(failed)


def test_written_manifests_are_yaml_documents_one_per_object(
    environment_plans: dict[str, Plan], tmp_path: Path
) -> None:
    paths = write_manifests(environment_plans["prod"].resources, tmp_path)
    kinds = [yaml.safe_load(path.read_text())["kind"] for path in paths]
    assert len(paths) == len(set(paths)) == len(kinds) >= 9
