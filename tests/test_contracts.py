"""Each contract between the parts is spelled in one module, and every other module imports it.

The MLflow names (registered model, experiments, aliases, version tags, artifact paths, run
metric keys) are built by `ranking_features.mlflow_names`, the lake layout and the feedback types
by `ranking_features.events`, the Prometheus metric names by `ranking_features.metric_names`, the
workload environment's variables by `ranking_features.workload_env` (docs/architecture.md,
"Contracts"). These tests read the string literals of every non-test source (docstrings and
comments aside) and fail, naming file and line, on one that spells a contract anywhere else.

The tests themselves are not searched: they spell the strings on purpose, as the statement of
what the contract is from outside it. A test that only imported the constant would pass
whatever the constant said, so a renamed variable or tag would break every deployed reader
without a test noticing.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ranking_features.mlflow_names import (
    CHALLENGER,
    CHAMPION,
)

pytestmark = pytest.mark.fast

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = (
    "infra",
    "recplat",
    "policies",
    "benchmarks",
    "reference-service",
    "reference-training",
)
MLFLOW_NAMES = REPO_ROOT / "reference-service/ranking_features/mlflow_names.py"
WORKLOAD_ENV = REPO_ROOT / "reference-service/ranking_features/workload_env.py"
LAKE_LAYOUT = REPO_ROOT / "reference-service/ranking_features/events.py"
METRIC_NAMES = REPO_ROOT / "reference-service/ranking_features/metric_names.py"
METRIC_NAME = re.compile(r"\brecplat_[a-z][a-z0-9_]*")
"""A Prometheus metric name of ours: the service's, the dashboards' and the alert rules'."""
ALIASES = {CHAMPION, CHALLENGER}


def sources() -> Iterator[Path]:
    for folder in SOURCE_DIRS:
        yield from sorted((REPO_ROOT / folder).rglob("*.py"))


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are statements of their own (docstrings)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def string_literals(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every string literal in `path`, f-strings' literal parts included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skipped = docstrings(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skipped
        ):
            yield node.lineno, node.value


def alias_literals(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of an alias spelled out: assigned to a name, or passed to an *alias* call."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        values: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            values = [node.value]  # a definition: NAME = "champion"
        elif isinstance(node, ast.Call) and "alias" in ast.unparse(node.func).lower():
            values = [*node.args, *(keyword.value for keyword in node.keywords)]
            values += [e for v in values if isinstance(v, ast.Tuple | ast.List) for e in v.elts]
        for value in values:
            if isinstance(value, ast.Constant) and value.value in ALIASES:
                yield value.lineno, str(value.value)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.search(rf"@({CHAMPION}|{CHALLENGER})\b", node.value)
        ):
            yield node.lineno, node.value


def offenders(
    owner: Path, literals: Callable[[Path], Iterator[tuple[int, str]]], spells: re.Pattern[str]
) -> list[str]:
    return [
        f"{path.relative_to(REPO_ROOT)}:{line}: {text!r}"
        for path in sources()
        if path != owner
        for line, text in literals(path)
        if spells.search(text)
    ]


@pytest.mark.parametrize(
    ("contract", "owner", "literals", "spells"),
    [
        (
            "registered model name <brand>-ranker",
            MLFLOW_NAMES,
            string_literals,
            re.compile(r"-ranker$"),
        ),
        (
            "experiment name recplat/<brand>",
            MLFLOW_NAMES,
            string_literals,
            re.compile(r"^recplat/"),
        ),
        ("alias champion|challenger", MLFLOW_NAMES, alias_literals, re.compile(r".")),
        (
            "lake path events/... or catalog/items.parquet",
            LAKE_LAYOUT,
            string_literals,
            re.compile(r"(^|/)events/|(^|/)catalog/items\.parquet|date=\*"),
        ),
        (
            "feedback type click|conversion|dismiss",
            LAKE_LAYOUT,
            string_literals,
            re.compile(r"^(click|conversion|dismiss)$"),
        ),
        (
            "workload variable RECPLAT_* or MLFLOW_TRACKING_URI",
            WORKLOAD_ENV,
            string_literals,
            re.compile(r"RECPLAT_|^MLFLOW_TRACKING_URI$"),
        ),
        (
            "MLflow version tag gate.*|experiment.*|online.*|drift.*|data_fingerprint",
            MLFLOW_NAMES,
            string_literals,
            re.compile(r"^(gate|experiment|online|drift)\.[a-z_]|^data_fingerprint$"),
        ),
        (
            "MLflow artifact path features/*.json or evaluation/*",
            MLFLOW_NAMES,
            string_literals,
            re.compile(r"(^|/)features/[a-z_]+\.json$|^evaluation/"),
        ),
        (
            "run metric key biased.*|ope.*",
            MLFLOW_NAMES,
            string_literals,
            re.compile(r"^biased\.|^ope\.(?!json$)"),
        ),
        ("Prometheus metric name recplat_...", METRIC_NAMES, string_literals, METRIC_NAME),
    ],
)
def test_a_contract_is_spelled_only_where_it_is_defined(
    contract: str,
    owner: Path,
    literals: Callable[[Path], Iterator[tuple[int, str]]],
    spells: re.Pattern[str],
) -> None:
    found = offenders(owner, literals, spells)
    assert found == [], (
        f"{contract} is owned by {owner.relative_to(REPO_ROOT)}; import it from there instead of "
        "spelling it:\n" + "\n".join(found)
    )


def test_the_grep_finds_a_contract_spelled_elsewhere(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        '"""Docstrings may name `acme-ranker` and events/feedback."""\n'
        'MODEL = f"{brand}-ranker"\n'
        'client.set_registered_model_alias(MODEL, "champion", "3")\n'
        'FOLDER = "events/feedback"\n'
        'QUERY = f"max(recplat_model_age_seconds{{brand={brand!r}}})"\n'
        "# A comment may name recplat_fallback_total.\n"
        'PREFIX = "recplat_"\n',
        encoding="utf-8",
    )
    assert [line for line, text in string_literals(wrong) if text.endswith("-ranker")] == [2]
    assert [line for line, _ in alias_literals(wrong)] == [3]
    assert [line for line, text in string_literals(wrong) if "events/" in text] == [4]
    assert [line for line, text in string_literals(wrong) if METRIC_NAME.search(text)] == [5]


def test_the_grep_names_file_and_line_of_a_copied_variable_tag_or_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source that retypes a workload variable, a version tag and an artifact path fails
    the contract test with its file:line, while its docstring may name them."""
    source = tmp_path / "infra" / "copied.py"
    source.parent.mkdir()
    source.write_text(
        '"""Reads RECPLAT_LAKE_URI, tags drift.evaluated_at and logs features/snapshot.json."""\n'
        'env = {"RECPLAT_LAKE_URI": lake_uri}\n'
        'client.set_model_version_tag(model, version, "drift.evaluated_at", now)\n'
        'mlflow.log_dict(snapshot, "features/snapshot.json")\n'
        'feedback = rows[rows["type"] == "click"]\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(sys.modules[__name__], "REPO_ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "SOURCE_DIRS", ("infra",))
    owner = tmp_path / "owner.py"
    found = {
        pattern: offenders(owner, string_literals, re.compile(pattern))
        for pattern in (r"RECPLAT_", r"^drift\.", r"(^|/)features/[a-z_]+\.json$", r"^click$")
    }
    assert found == {
        r"RECPLAT_": ["infra/copied.py:2: 'RECPLAT_LAKE_URI'"],
        r"^drift\.": ["infra/copied.py:3: 'drift.evaluated_at'"],
        r"(^|/)features/[a-z_]+\.json$": ["infra/copied.py:4: 'features/snapshot.json'"],
        r"^click$": ["infra/copied.py:5: 'click'"],
    }


def test_no_source_cites_the_outside_design_brief() -> None:
    """The design lives in docs/architecture.md; the design brief it came from is
    outside the repository."""
    outside = "DESIGN" + ".md"  # spelled in two parts so this file does not cite it
    folders = (*SOURCE_DIRS, "tests", "scripts", "images", "brands", ".github")
    files = [REPO_ROOT / "README.md", REPO_ROOT / "Makefile", REPO_ROOT / "pyproject.toml"]
    files += [
        path
        for folder in folders
        for path in sorted((REPO_ROOT / folder).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]
    citing = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for path in files
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        )
        if outside in line
    ]
    assert citing == [], (
        "cite docs/architecture.md (the section that covers it) instead of the outside brief:\n"
        + "\n".join(citing)
    )
