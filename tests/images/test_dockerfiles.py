"""checkov passes on every Dockerfile; each skipped check is inline in the Dockerfile with
its reason, and only the one for the build-argument base image is skipped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recplat.testing.checkov import run_checkov
from tests.images.podman_runtime import REPO_ROOT

DOCKERFILES = [
    REPO_ROOT / "reference-service" / "Dockerfile",
    REPO_ROOT / "reference-training" / "Dockerfile",
    REPO_ROOT / "images" / "mlflow" / "Dockerfile",
]
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(?P<check>CKV\w+)(?::(?P<reason>.*))?")
ALLOWED_SKIPS = {"CKV_DOCKER_7"}


def test_checkov_passes_every_dockerfile() -> None:
    report = run_checkov("dockerfile", files=DOCKERFILES)
    assert report.failed == [], "\n".join(report.failed)
    assert report.passed >= 150
    assert report.resources == len(DOCKERFILES)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_every_checkov_skip_says_why(dockerfile: Path) -> None:
    skips = [match for match in SKIP_COMMENT.finditer(dockerfile.read_text())]
    for skip in skips:
        assert skip["check"] in ALLOWED_SKIPS, f"{dockerfile}: unexpected skip {skip['check']}"
        assert skip["reason"] and len(skip["reason"].strip()) > 40, f"{dockerfile}: {skip[0]}"
