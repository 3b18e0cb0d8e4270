"""The layers (docs/architecture.md, "Layers") are checked by import-linter, and the check bites.

`make lint` runs `lint-imports` with the contracts in pyproject.toml. These tests run it on the
sources as they are (it passes) and on a copy of them with one import that crosses a layer
added (it fails and names the import), so a configuration that stopped checking anything,
or a contract that no longer covers a package, fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

REPO_ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# Where each top-level package's directory lives, relative to the repository.
SOURCE_TREES = (
    "recplat",
    "infra",
    "policies",
    "benchmarks",
    "tests",
    "reference-service/ranking_features",
    "reference-service/ranking_service",
    "reference-training/ranking_training",
)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the repository's contracts, on the packages found under `root`."""
    env = {
        **os.environ,
        "COLUMNS": "400",  # one line per contract in the summary
        # Ahead of the editable install's paths, so the packages under `root` are the ones read.
        "PYTHONPATH": os.pathsep.join(
            str(root / part) for part in (".", "reference-service", "reference-training")
        ),
    }
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(REPO_ROOT / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def copy_sources(destination: Path) -> None:
    for tree in SOURCE_TREES:
        shutil.copytree(
            REPO_ROOT / tree,
            destination / tree,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "results"),
        )


def test_the_sources_keep_every_layer_contract() -> None:
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "broken_contract"),
    [
        # The lowest layer reaching up into the command line.
        ("reference-service/ranking_features/wrong.py", "import recplat.cli", "Layers"),
        # The service image carries no training code.
        (
            "reference-service/ranking_service/wrong.py",
            "import ranking_training.config",
            "The service and the training job are independent",
        ),
        # The training job importing infra.
        (
            "reference-training/ranking_training/wrong.py",
            "import infra.brand_names",
            "The workloads import neither",
        ),
        # The brand model (contracts) importing infra, which builds on it.
        (
            "reference-service/ranking_features/brand/fields.py",
            "import infra.brand_names",
            "Layers",
        ),
        # The training job reading brand files through the CLI package (its image has none).
        (
            "reference-training/ranking_training/wrong.py",
            "import recplat.brands_cli",
            "The workloads import neither",
        ),
        # Benchmarks import the packages, never the tests.
        ("benchmarks/wrong.py", "import tests.test_layout", "Nothing but the tests"),
    ],
)
def test_lint_imports_fails_on_an_import_that_crosses_a_layer(
    tmp_path: Path, module: str, wrong_import: str, broken_contract: str
) -> None:
    copy_sources(tmp_path)
    path = tmp_path / module
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(existing + f"\n{wrong_import}\n", encoding="utf-8")

    result = lint_imports(tmp_path)

    importer = module.split("/", 1)[-1] if module.startswith("reference-") else module
    importer = importer.removesuffix(".py").replace("/", ".")
    imported = wrong_import.removeprefix("import ")
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert [line for line in broken if line.startswith(broken_contract)], result.stdout
    assert f"{importer} -> {imported}" in result.stdout, result.stdout
