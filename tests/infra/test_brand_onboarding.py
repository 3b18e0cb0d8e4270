"""Onboarding and offboarding a brand through the whole program, planned offline.

Adding a brand file must add exactly that brand's resources, and dropping a stack
from a brand's ``environments`` must remove exactly its resources. The shared
resource allowed to change is the lake's lifecycle policy, which names every brand
container's ``events/`` prefix (each brand's MLflow access Job is its own). ``recplat plan
--diff`` is run the way CI runs it: in a clone, against
``HEAD``, with Markdown written for the job summary.
"""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from recplat.plan import Plan, plan_stack
from recplat.plan_diff import ENVIRONMENT_GROUP, PlanDiff, compare_plans, run_plan_diff

REPO = Path(__file__).resolve().parents[2]
LIFECYCLE_TYPE = "azure-native:storage:ManagementPolicy"
PLATFORM_DASHBOARD_TYPE = "azure-native:dashboard:DashboardDefinition"
NEW_BRAND = """\
name: gardenhub
display_name: Garden Hub
owner: garden-data@recplat.dev
cost_center: CC-GARDEN-09
environments: [dev]
serving: {replicas: {min: 1, max: 2}, cpu: 250m, memory: 512Mi, latency_slo_ms: 60}
training: {schedule: "0 5 * * *", workers: 0}
"""


def _plans(stack: str, *brand_dirs: Path) -> list[Plan]:
    with ThreadPoolExecutor(len(brand_dirs)) as pool:
        futures = [pool.submit(plan_stack, stack, d, REPO) for d in brand_dirs]
        return [future.result() for future in futures]


def _assert_only_brand_lists_changed(diff: PlanDiff, brand: str) -> None:
    """The environment may change only where it lists brands: the lake's lifecycle rule and
    the platform dashboard.

    A brand's MLflow users and names are reserved by its own BrandStack (MlflowAccess), so
    adding or removing a brand touches no other brand's or the environment's MLflow objects.
    """
    for change in diff.groups.get(ENVIRONMENT_GROUP, []):
        assert change.action == "change", f"{change.urn} must not {change.action}"
        if change.type == PLATFORM_DASHBOARD_TYPE:
            # The platform dashboard shows every brand (its p99 against its own SLO).
            assert [item.path for item in change.inputs] == ["properties.serializedData"]
            before_text, after_text = (str(change.inputs[0].before), str(change.inputs[0].after))
            assert (f'brand=\\"{brand}\\"' in before_text) != (
                f'brand=\\"{brand}\\"' in after_text
            ), change.inputs
            continue
        assert change.type == LIFECYCLE_TYPE, (
            f"{change.urn} must not change when a brand is added or removed"
        )
        assert [item.path for item in change.inputs] == [
            "policy.rules[0].definition.filters.prefixMatch"
        ], change.inputs
        before, after = (
            set(value or []) for value in (change.inputs[0].before, change.inputs[0].after)
        )
        assert before ^ after == {f"brand-{brand}/events/"}, change.inputs


def test_removing_an_environment_removes_exactly_that_brands_resources(tmp_path: Path) -> None:
    before_dir, after_dir = tmp_path / "before", tmp_path / "after"
    shutil.copytree(REPO / "brands", before_dir)
    shutil.copytree(REPO / "brands", after_dir)
    newsroom = after_dir / "newsroom.yaml"
    document = yaml.safe_load(newsroom.read_text())
    assert "prod" in document["environments"]
    document["environments"] = ["dev"]
    newsroom.write_text(yaml.safe_dump(document))

    before, after = _plans("prod", before_dir, after_dir)
    diff = compare_plans(before, after, "before")

    newsroom_urns = {r["urn"] for r in before.resources if before.brand_of(r["urn"]) == "newsroom"}
    assert len(newsroom_urns) > 20
    assert set(diff.groups) <= {"newsroom", ENVIRONMENT_GROUP}
    removed = {c.urn for c in diff.groups["newsroom"] if c.action == "remove"}
    assert removed == newsroom_urns
    assert diff.count("add") == 0
    _assert_only_brand_lists_changed(diff, "newsroom")
    # The other prod brand is untouched, input for input.
    streamly = [r for r in after.resources if after.brand_of(r["urn"]) == "streamly"]
    assert streamly and "streamly" not in diff.groups


def test_adding_a_brand_file_adds_exactly_that_brand_in_the_pr_diff(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--shared", str(REPO), str(clone)], check=True)
    (clone / "brands" / "gardenhub.yaml").write_text(NEW_BRAND)
    markdown = tmp_path / "summary.md"

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.chdir(clone)
    try:
        assert run_plan_diff("dev", "HEAD", markdown) == 0
    finally:
        monkeypatch.undo()

    text = markdown.read_text()
    assert "### `recplat plan` for stack `dev` against `HEAD`" in text
    rows = {
        line.split("|")[1].strip(): [int(cell) for cell in line.split("|")[2:5]]
        for line in text.splitlines()
        if line.startswith("| brand `") or line.startswith("| environment |")
    }
    assert set(rows) <= {"brand `gardenhub`", "environment"}, rows
    added, changed, removed = rows["brand `gardenhub`"]
    assert added > 20 and changed == removed == 0
    if "environment" in rows:
        assert rows["environment"][0] == rows["environment"][2] == 0, rows
        assert LIFECYCLE_TYPE in text
    additions = [line for line in text.splitlines() if line.startswith("- `+`")]
    assert len(additions) == added
    for line in additions:
        name = line.split("**")[1]
        assert name == "gardenhub" or name.startswith("gardenhub-"), line


def test_an_unknown_ref_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    assert run_plan_diff("dev", "no-such-branch-xyz", None) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --diff no-such-branch-xyz: no such commit in ")
