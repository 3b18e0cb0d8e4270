"""Where test code lives: fixtures in `conftest.py` files, helpers in named modules.

A conftest is pytest's to import; a module that imports one (or a test module) gets a second
copy of it under another name, and fixtures run twice. Benchmarks are scripts run from
anywhere: they import the installed packages (`recplat.testing` for the servers and rankers
tests use), never `tests`, and never edit `sys.path`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

REPO_ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in `path`; relative imports keep their leading dots."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


def test_no_test_code_imports_a_conftest_or_a_test_module() -> None:
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{line}: imports {module}"
        for path in sorted((REPO_ROOT / "tests").rglob("*.py"))
        for line, module in imported_modules(path)
        if any(part == "conftest" or part.startswith("test_") for part in module.split("."))
    ]
    assert offenders == [], (
        "move what is shared into a helper module beside the tests (or recplat.testing) "
        "and import that:\n" + "\n".join(offenders)
    )


def test_benchmarks_import_packages_not_tests() -> None:
    offenders = []
    for path in sorted((REPO_ROOT / "benchmarks").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        offenders += [
            f"{path.relative_to(REPO_ROOT)}:{line}: imports {module}"
            for line, module in imported_modules(path)
            if module == "tests" or module.startswith("tests.")
        ]
        if "sys.path" in text:
            offenders.append(f"{path.relative_to(REPO_ROOT)}: edits sys.path")
    assert offenders == [], "benchmarks import recplat.testing instead:\n" + "\n".join(offenders)


def test_the_layout_check_finds_a_conftest_import(tmp_path: Path) -> None:
    module = tmp_path / "test_example.py"
    module.write_text(
        "from tests.infra.conftest import one\nfrom .test_other import x\nimport json\n"
    )
    assert imported_modules(module) == [
        (1, "tests.infra.conftest"),
        (2, ".test_other"),
        (3, "json"),
    ]
