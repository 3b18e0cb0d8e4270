"""No module over 400 lines and no function over 60 outside the tests, unless it says why.

A module that stays longer starts with a `# long: <reason>` line; a function that stays longer
has one on the line directly above its `def` (above its decorators). The reason is for the
reader who wonders why this one was not split (issue 17).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = (
    "infra",
    "recplat",
    "policies",
    "benchmarks",
    "reference-service",
    "reference-training",
    "scripts",
)
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
REASON = "# long:"


def _sources() -> Iterator[Path]:
    for folder in SOURCE_DIRS:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                yield path


def _module_reason(lines: list[str]) -> bool:
    first = lines[1] if lines and lines[0].startswith("#!") and len(lines) > 1 else lines[0]
    return first.startswith(REASON) and len(first.strip()) > len(REASON) + 3


def oversized(path: Path) -> list[str]:
    """`file:line: what` for each part of `path` over its limit without a reason."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    where = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    found = []
    if len(lines) > MAX_MODULE_LINES and not _module_reason(lines):
        found.append(f"{where}:1: module of {len(lines)} lines (limit {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        assert node.end_lineno is not None
        length = node.end_lineno - node.lineno + 1
        if length <= MAX_FUNCTION_LINES:
            continue
        top = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        above = lines[top - 2].strip() if top >= 2 else ""
        if not (above.startswith(REASON) and len(above) > len(REASON) + 3):
            found.append(
                f"{where}:{node.lineno}: {node.name} is {length} lines (limit {MAX_FUNCTION_LINES})"
            )
    return found


def test_modules_and_functions_within_limits_or_say_why() -> None:
    found = [problem for path in _sources() for problem in oversized(path)]
    assert not found, (
        "split these, or put a one-line '# long: <reason>' at the top of the module or on the "
        "line above the def:\n" + "\n".join(found)
    )


def test_the_check_catches_a_long_function_and_accepts_a_reason(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    source = tmp_path / "probe.py"
    source.write_text(f"def too_long():\n{body}\n", encoding="utf-8")
    assert [p.split(": ", 1)[1] for p in oversized(source)] == [
        f"too_long is {MAX_FUNCTION_LINES + 1} lines (limit {MAX_FUNCTION_LINES})"
    ]
    source.write_text(f"# long: a probe\ndef too_long():\n{body}\n", encoding="utf-8")
    assert oversized(source) == []
    module = "\n".join(f"x{i} = {i}" for i in range(MAX_MODULE_LINES + 1))
    source.write_text(module + "\n", encoding="utf-8")
    assert len(oversized(source)) == 1
    source.write_text("# long: a probe\n" + module + "\n", encoding="utf-8")
    assert oversized(source) == []
