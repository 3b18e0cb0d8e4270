"""Platform alert rules: valid for promtool, tested by promtool, and loaded as Azure rule groups."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from infra.cluster_monitoring import PLATFORM_RULES, iso_duration, rule_groups_from_yaml
from recplat.plan import Plan

RULES_DIR = PLATFORM_RULES.parent


def _promtool() -> str:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (scripts/bootstrap.sh does)"
    return promtool


def test_promtool_check_rules_accepts_the_platform_rules() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(PLATFORM_RULES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", "platform.rules.test.yaml"],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """A wrong expectation makes promtool fail, so the passing test above means something."""
    broken = (
        (RULES_DIR / "platform.rules.test.yaml")
        .read_text()
        .replace("severity: critical, namespace: mlflow", "severity: warning, namespace: mlflow")
    )
    shutil.copy(PLATFORM_RULES, tmp_path / PLATFORM_RULES.name)
    (tmp_path / "broken.test.yaml").write_text(broken)
    result = subprocess.run(
        [_promtool(), "test", "rules", "broken.test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0


@pytest.mark.parametrize(
    ("prometheus", "iso"), [("5m", "PT5M"), ("1h30m", "PT1H30M"), ("30s", "PT30S")]
)
def test_prometheus_durations_become_iso8601(prometheus: str, iso: str) -> None:
    assert iso_duration(prometheus) == iso


def test_an_unsupported_duration_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unsupported Prometheus duration '1d'"):
        iso_duration("1d")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_rule_group_is_created_with_every_rule(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    groups = {group["name"]: group for group in rule_groups_from_yaml(PLATFORM_RULES)}
    planned = environment_plans[stack].of_type("azure-native:alertsmanagement:PrometheusRuleGroup")
    assert len(planned) == len(groups)
    for resource in planned:
        props = resource["inputs"]
        source = groups[props["ruleGroupName"].removesuffix(f"-aks-recplat-{stack}")]
        assert [r.get("alert") or r.get("record") for r in props["rules"]] == [
            r.get("alert") or r.get("record") for r in source["rules"]
        ], resource["urn"]
        assert len(props["scopes"]) == 2, f"{resource['urn']}: scopes are the workspace and cluster"
        for rule in props["rules"]:
            if "alert" in rule:
                assert rule["actions"][0]["actionGroupId"].endswith(
                    f"/actionGroups/ag-recplat-{stack}"
                ), resource["urn"]
