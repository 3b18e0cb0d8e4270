"""The environment's Kubernetes objects pass the upstream schemas (strict) and checkov."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from recplat.plan import Plan
from recplat.plan_cli import kubernetes_manifest, write_manifests
from recplat.testing.checkov import run_checkov
from tests.infra.plan_queries import kubernetes_version

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
    paths = write_manifests(environment_plans[stack].resources, tmp_path)
    report = run_checkov("kubernetes", directory=tmp_path, skip_checks=CHECKOV_SKIPS)
    assert report.failed == [], "\n".join(report.failed)
    # checkov read every object written (it counts a workload's containers as resources too).
    assert report.resources >= len(paths), (report.resources, [p.name for p in paths])


def test_written_manifests_are_yaml_documents_one_per_object(
    environment_plans: dict[str, Plan], tmp_path: Path
) -> None:
    paths = write_manifests(environment_plans["prod"].resources, tmp_path)
    kinds = [yaml.safe_load(path.read_text())["kind"] for path in paths]
    assert len(paths) == len(set(paths)) == len(kinds) >= 9
