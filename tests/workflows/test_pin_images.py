"""`scripts/containers/pin_images.py`: the deploy workflow's way of deploying the images
its commit built, by rewriting `recplat:images` in the stack file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.fast

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "containers" / "pin_images.py"


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_pins_every_image_of_the_stack_to_the_tag_and_keeps_the_rest(
    stack: str, tmp_path: Path
) -> None:
    original = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())
    shutil.copy(REPO_ROOT / f"Pulumi.{stack}.yaml", tmp_path)
    sha = "0123456789abcdef0123456789abcdef01234567"

    result = run(tmp_path, "--stack", stack, "--tag", sha)

    assert result.returncode == 0, result.stderr
    pinned = yaml.safe_load((tmp_path / f"Pulumi.{stack}.yaml").read_text())
    images = pinned["config"].pop("recplat:images")
    assert images == {
        "service": f"recplat/ranking-service:{sha}",
        "training": f"recplat/ranking-training:{sha}",
        "mlflow": f"recplat/mlflow:{sha}",
    }
    original["config"].pop("recplat:images")
    assert pinned == original


def test_refuses_a_tag_that_is_not_an_image_tag(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "Pulumi.dev.yaml", tmp_path)
    result = run(tmp_path, "--stack", "dev", "--tag", "main;rm -rf /")
    assert result.returncode == 2
    assert result.stderr == "pin_images: --tag: 'main;rm -rf /' is not a valid image tag\n"


def test_names_a_missing_stack_file(tmp_path: Path) -> None:
    result = run(tmp_path, "--stack", "qa", "--tag", "abc")
    assert result.returncode == 2
    assert result.stderr == f"pin_images: {tmp_path / 'Pulumi.qa.yaml'} does not exist\n"


def test_pins_by_digest_keeping_the_tag_for_readers(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "Pulumi.prod.yaml", tmp_path)
    sha = "0123456789abcdef0123456789abcdef01234567"
    digests = {
        name: "sha256:" + char * 64
        for name, char in zip(("service", "training", "mlflow"), "abc", strict=True)
    }
    text = ",".join(f"{name}={digest}" for name, digest in digests.items())

    result = run(tmp_path, "--stack", "prod", "--tag", sha, "--digests", text)

    assert result.returncode == 0, result.stderr
    images = yaml.safe_load((tmp_path / "Pulumi.prod.yaml").read_text())["config"]["recplat:images"]
    assert images["service"] == f"recplat/ranking-service:{sha}@{digests['service']}"
    assert images["mlflow"] == f"recplat/mlflow:{sha}@{digests['mlflow']}"
    # The pinned references pass the stack config's own image check.
    from infra.config import ImagesConfig

    ImagesConfig.model_validate(images)


def test_refuses_a_missing_or_malformed_digest(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "Pulumi.dev.yaml", tmp_path)
    missing = run(
        tmp_path, "--stack", "dev", "--tag", "abc", "--digests", "service=sha256:" + "a" * 64
    )
    assert missing.returncode == 2
    assert "expected one digest for each of ['mlflow', 'service', 'training']" in missing.stderr
    bad = run(tmp_path, "--stack", "dev", "--tag", "abc", "--digests", "service=latest")
    assert bad.returncode == 2
    assert "'service=latest' is not <image>=sha256:<64 hex>" in bad.stderr
