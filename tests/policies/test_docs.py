"""The README documents exactly the policies, severities and per-stack levels that run."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.readme_table import render_table

pytestmark = pytest.mark.fast

README = Path(__file__).resolve().parents[2] / "policies" / "README.md"


def test_readme_rule_table_matches_the_catalog_and_stack_configs() -> None:
    table = render_table()

    assert table in README.read_text(encoding="utf-8"), (
        "policies/README.md is stale; regenerate with `uv run python -m policies.readme_table`"
    )


def test_every_policy_is_documented_once_and_there_are_at_least_30() -> None:
    rows = [line for line in render_table().splitlines() if line.startswith("| `")]
    ids = [row.split("`")[1] for row in rows]

    assert len(ids) == len(set(ids)) >= 30
