"""`recplat brands ...` as a user runs it: a real subprocess, exit codes and exact lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ranking_features.brand import load_brands

REPO_ROOT = Path(__file__).resolve().parents[2]
GOOD = (REPO_ROOT / "brands" / "shopsmart.yaml").read_text()


def recplat(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recplat", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def good_with(**changes: object) -> str:
    data = yaml.safe_load(GOOD)
    data.update(changes)
    return yaml.safe_dump(data)


# (file name, content, the field the message must name)
MALFORMED: list[tuple[str, str | bytes, str]] = [
    ("shopsmart.yaml", "", "(file): a mapping of brand settings, got an empty file"),
    ("shopsmart.yaml", "- a\n- b\n", "(file): a mapping of brand settings, got a list of 2"),
    ("shopsmart.yaml", "just words\n", "(file): a mapping of brand settings, got 'just words'"),
    ("shopsmart.yaml", "42\n", "(file): a mapping of brand settings, got 42"),
    ("shopsmart.yaml", b"\x89PNG\r\n\x1a\n\x00\x00", "(file): UTF-8 text, got a byte at offset 0"),
    ("shopsmart.yaml", "name: shopsmart\x00\n", "(file): text, got binary data (a NUL byte)"),
    ("shopsmart.yaml", "name: [unclosed\n", "line 2, column 1: valid YAML"),
    ("shopsmart.yaml", "name: a\n  bad: indent\n", "line 2, column 6: valid YAML"),
    ("shopsmart.yaml", "a" * 300_000, "(file): at most 262144 bytes, got 300000"),
    ("shopsmart.yaml", good_with(name="other"), "name: the file's stem 'shopsmart'"),
    ("shopsmart.yaml", good_with(environments="dev"), "environments: a list, got 'dev'"),
    ("shopsmart.yaml", good_with(environments=["qa"]), "environments.0: one of 'dev' or 'prod'"),
    ("shopsmart.yaml", good_with(owner=None), "owner: a string, got null"),
    (
        "shopsmart.yaml",
        good_with(owner="nobody"),
        "owner: an email address (must have an @-sign), got 'nobody'",
    ),
    (
        "shopsmart.yaml",
        good_with(owner="recs@acme-media"),
        "owner: an email address (the part after the @-sign is not valid. It should have a "
        "period), got 'recs@acme-media'",
    ),
    (
        "shopsmart.yaml",
        good_with(owner="recs@@acme-media.com"),
        "owner: an email address (the part after the @-sign contains invalid characters: '@'), "
        "got 'recs@@acme-media.com'",
    ),
    (
        "shopsmart.yaml",
        good_with(serving={"replicas": {"min": 3, "max": 2}}),
        "serving.replicas.max: must be >= min (3), got 2",
    ),
    (
        "shopsmart.yaml",
        good_with(serving={"challenger_traffic": 0.9}),
        "serving.challenger_traffic: a number <= 0.5, got 0.9",
    ),
    (
        "shopsmart.yaml",
        good_with(serving={"max_candidates": "many"}),
        "serving.max_candidates: an integer, got 'many'",
    ),
    ("shopsmart.yaml", good_with(serving=[1]), "serving: a mapping, got a list of 1"),
    (
        "shopsmart.yaml",
        good_with(training={"schedule": "0 0 32 * *"}),
        "training.schedule: a 5-field cron expression such as '0 3 * * *' (bad day-of-month), "
        "got '0 0 32 * *'",
    ),
    (
        # February 30th: every field in range, and the CronJob would never run.
        "shopsmart.yaml",
        good_with(training={"schedule": "0 3 30 2 *"}),
        "training.schedule: a 5-field cron expression such as '0 3 * * *' (bad day-of-month), "
        "got '0 3 30 2 *'",
    ),
    (
        # Names are cron, but not what the staleness alert's schedule reader takes.
        "shopsmart.yaml",
        good_with(training={"schedule": "0 3 * * MON"}),
        "training.schedule: a 5-field cron expression such as '0 3 * * *' (numbers, '*', ',', "
        "'-' and '/' only), got '0 3 * * MON'",
    ),
    (
        "shopsmart.yaml",
        good_with(training={"schedule": "*/0 * * * *"}),
        "training.schedule: a 5-field cron expression such as '0 3 * * *' (bad minute), "
        "got '*/0 * * * *'",
    ),
    (
        "shopsmart.yaml",
        good_with(training={"workers": -1}),
        "training.workers: a number >= 0, got -1",
    ),
    (
        "shopsmart.yaml",
        good_with(training={"promotion": {"metric": "auc"}}),
        "training.promotion.metric: one of",
    ),
    (
        "shopsmart.yaml",
        good_with(extra_key=True),
        "extra_key: no such key (remove it or check its spelling), got 'extra_key'",
    ),
    (
        "shopsmart.yaml",
        good_with(overrides={"prod": {"serving": {"cpu": "x"}}}),
        "overrides.prod.serving.cpu: a Kubernetes CPU quantity",
    ),
    (
        "shopsmart.yaml",
        good_with(overrides={"prod": []}),
        "overrides.prod: a mapping, got a list of 0",
    ),
    ("Shop_Smart.yaml", good_with(name="Shop_Smart"), "name: a lowercase DNS label"),
]


@pytest.mark.parametrize(
    ("file_name", "content", "expected"),
    MALFORMED,
    ids=[f"malformed-{i}" for i in range(len(MALFORMED))],
)
def test_malformed_brand_file_exits_1_naming_file_and_field(
    tmp_path: Path, file_name: str, content: str | bytes, expected: str
) -> None:
    path = tmp_path / file_name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    result = recplat("brands", "validate", str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith(f"{path}: {expected}") for line in lines), lines


def test_duplicate_names_across_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "shopsmart.yaml").write_text(GOOD)
    (tmp_path / "shopsmart.yml").write_text(GOOD)
    result = recplat("brands", "validate", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"{tmp_path / 'shopsmart.yml'}: name: a name no other brand uses "
        f"(see {tmp_path / 'shopsmart.yaml'}), got 'shopsmart'"
    )


def test_every_problem_of_a_file_gets_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "shopsmart.yaml"
    path.write_text(good_with(owner="x", cost_center="a b"))
    result = recplat("brands", "validate", str(path))
    assert result.stderr.strip().splitlines() == [
        f"{path}: owner: an email address (must have an @-sign), got 'x'",
        f"{path}: cost_center: 1-32 letters, digits, '-' or '_', got 'a b'",
    ]


def test_missing_path_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = recplat("brands", "validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"{tmp_path / 'nope.yaml'}: (file): an existing brand file or directory, got nothing"
    )


def test_repository_brands_are_valid() -> None:
    result = recplat("brands", "validate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3 brand file(s) valid: newsroom, shopsmart, streamly"


def test_example_brands_differ_meaningfully() -> None:
    brands = {brand.name: brand for brand in load_brands(REPO_ROOT / "brands")}
    assert [e.value for e in brands["shopsmart"].environments] == ["dev"]
    assert brands["newsroom"].training.lookback_days < brands["streamly"].training.lookback_days
    assert brands["streamly"].for_environment("prod").training.workers > 0
    assert brands["streamly"].for_environment("dev").training.workers == 0


OWNER = ("--owner", "fresh-recs@recplat.dev", "--cost-center", "CC-FRESH-01")


def test_new_writes_a_valid_commented_file(tmp_path: Path) -> None:
    result = recplat("brands", "new", "fresh-brand", "--brands-dir", str(tmp_path), *OWNER)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "fresh-brand.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=./brand.schema.json\n")
    assert 'owner: "fresh-recs@recplat.dev"\ncost_center: "CC-FRESH-01"\n' in text
    assert recplat("brands", "validate", str(tmp_path)).returncode == 0


def test_new_refuses_an_existing_brand(tmp_path: Path) -> None:
    first = recplat("brands", "new", "fresh-brand", "--brands-dir", str(tmp_path), *OWNER)
    assert first.returncode == 0, first.stderr
    again = recplat("brands", "new", "fresh-brand", "--brands-dir", str(tmp_path), *OWNER)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"{tmp_path / 'fresh-brand.yaml'}: (file): a name no brand file uses yet, "
        "got an existing file"
    )


def test_new_refuses_an_invalid_name(tmp_path: Path) -> None:
    result = recplat("brands", "new", "Bad_Name", "--brands-dir", str(tmp_path), *OWNER)
    assert result.returncode == 1
    assert "name: a lowercase DNS label" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_schema_file_is_not_stale() -> None:
    result = recplat("brands", "schema")
    committed = (REPO_ROOT / "brands" / "brand.schema.json").read_text()
    assert result.stdout == committed, (
        "run `recplat brands schema --write brands/brand.schema.json`"
    )
    assert json.loads(committed)["additionalProperties"] is False


def test_every_brand_file_points_editors_at_the_schema() -> None:
    for path in sorted((REPO_ROOT / "brands").glob("*.yaml")):
        first = path.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=./brand.schema.json", path


def test_list_shows_each_brand_and_environment() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "recplat", "brands", "list"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "│" in line]
    assert any("newsroom" in r and "prod" in r and "3-12" in r for r in rows), result.stdout
    assert any("shopsmart" in r and "dev" in r for r in rows)
    assert not any("shopsmart" in r and "prod" in r for r in rows)


# Issue 20, "a brand team's first hour": what a brand team sees from `recplat brands ...`.
def test_duplicate_block_is_refused_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "shopsmart.yaml"
    path.write_text(GOOD + "serving:\n  replicas: {min: 5, max: 9}\n")
    line = len(GOOD.splitlines()) + 1
    first = GOOD.splitlines().index("serving:") + 1
    result = recplat("brands", "validate", str(path))
    assert result.returncode == 1, result.stdout
    assert result.stderr.strip().splitlines() == [
        f"{path}:{line}: serving: each key once (first at line {first}; merge the two), "
        "got 'serving' again"
    ]


def test_numeric_cpu_and_any_kubernetes_memory_validate(tmp_path: Path) -> None:
    path = tmp_path / "shopsmart.yaml"
    text = GOOD.replace("cpu: 250m", "cpu: 0.5").replace(
        "  workers: 0\n", "  workers: 0\n  cpu: 1\n  memory: 3G\n"
    )
    path.write_text(text)
    result = recplat("brands", "validate", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 brand file(s) valid: shopsmart"


def test_validate_refuses_the_placeholders_brands_new_used_to_write(tmp_path: Path) -> None:
    path = tmp_path / "shopsmart.yaml"
    path.write_text(good_with(owner="team@example.com", cost_center="CC-0000"))
    result = recplat("brands", "validate", str(path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"{path}: owner: the owning team's real email address (example.com is reserved for "
        "examples and receives no mail), got 'team@example.com'",
        f"{path}: cost_center: the cost center your finance team assigned to the brand "
        "(not a placeholder), got 'CC-0000'",
    ]


def test_new_without_owner_and_cost_center_fails_and_writes_nothing(tmp_path: Path) -> None:
    result = recplat("brands", "new", "fresh-brand", "--brands-dir", str(tmp_path))
    assert result.returncode == 1
    target = tmp_path / "fresh-brand.yaml"
    assert result.stderr.strip().splitlines() == [
        f"{target}: owner: the owning team's email address (pass --owner), got nothing",
        f"{target}: cost_center: the cost center the brand's costs are charged to "
        "(pass --cost-center), got nothing",
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("owner", "cost_center", "message"),
    [
        ("team@example.com", "CC-7", "owner: the owning team's real email address"),
        ("recs@recplat.dev", "CC-0000", "cost_center: the cost center your finance team"),
        ("nobody", "CC-7", "owner: an email address (must have an @-sign), got 'nobody'"),
        ("recs@recplat.dev", "a b", "cost_center: 1-32 letters, digits, '-' or '_', got 'a b'"),
    ],
)
def test_new_refuses_placeholder_or_invalid_owner_without_a_traceback(
    tmp_path: Path, owner: str, cost_center: str, message: str
) -> None:
    result = recplat(
        "brands", "new", "fresh-brand", "--brands-dir", str(tmp_path),
        "--owner", owner, "--cost-center", cost_center,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith(f"{tmp_path / 'fresh-brand.yaml'}: {message}"), result.stderr
    assert list(tmp_path.iterdir()) == []


def test_validate_reports_every_problem_of_a_file_in_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "shopsmart.yaml"
    text = (
        GOOD.replace("name: shopsmart", "name: shop-smart")
        .replace("latency_slo_ms: 100", "latency_slo: 100")
        .replace("owner: retail-data@recplat.dev", "owner: retail-data")
        .replace("  workers: 0\n", "  workers: 0\n  workers: 1\n")
        .replace("      exploration: 0.2\n", "      exploration: 0.2\n      replicas: {max: 0}\n")
    )
    assert "replicas: {max: 0}" in text, "the example's dev override changed; update this test"
    path.write_text(text)
    lines = text.splitlines()
    first_workers = lines.index("  workers: 0") + 1
    result = recplat("brands", "validate", str(path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"{path}:{first_workers + 1}: training.workers: each key once "
        f"(first at line {first_workers}; merge the two), got 'workers' again",
        f"{path}: owner: an email address (must have an @-sign), got 'retail-data'",
        f"{path}: serving.latency_slo: no such key (did you mean 'latency_slo_ms'?), "
        "got 'latency_slo'",
        f"{path}: name: the file's stem 'shopsmart' (rename one), got 'shop-smart'",
        f"{path}: overrides.dev.serving.replicas.max: a number >= 1, got 0",
    ]
