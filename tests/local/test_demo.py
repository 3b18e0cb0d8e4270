"""`recplat local demo` end to end with two small brands: exit 0, a report, nothing left running."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.local.platform_cli import recplat, write_brands

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_demo_runs_the_loop_and_writes_the_report(tmp_path: Path) -> None:
    brands = write_brands(tmp_path / "brands", ["alpha", "bravo"])
    # alpha's experiments last ~17 s, so one that starts in the demo ends in it.
    alpha = brands / "alpha.yaml"
    alpha.write_text(
        alpha.read_text().replace("min_gain: 0.0}", "min_gain: 0.0, max_experiment_days: 0.0002}")
    )
    state_dir = tmp_path / "state"

    result = recplat(
        "local", "demo", "--brands-dir", str(brands), "--state-dir", str(state_dir),
        "--requests", "80", timeout=840,
    )  # fmt: skip

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    report = json.loads((state_dir / "report" / "report.json").read_text())
    assert [brand["brand"] for brand in report["brands"]] == ["alpha", "bravo"]
    for brand in report["brands"]:
        first, retrain = brand["first_gate"], brand["retrain_gate"]
        # v1 had no champion to beat: the gate made it champion or rejected it.
        assert first["version"] == "1" and first["outcome"] in {"champion", "rejected"}, first
        assert brand["champion_before"] == ("1" if first["outcome"] == "champion" else None)
        assert brand["feedback_sent"] > 0
        assert brand["feedback_in_lake"] == brand["feedback_sent"]
        assert brand["new_version"] == "2", brand
        outcome = retrain["outcome"]
        assert brand["gate"].startswith(f"{outcome}: "), brand["gate"]
        assert f"gate {outcome}" in brand["retraining"], brand["retraining"]
        # Every counterfactual decision shows the figures it rests on.
        if retrain["basis"] == "counterfactual":
            assert "ope.new_minus_popularity.pbm.low" in retrain["figures"], retrain
            assert "PBM" in retrain["reason"], retrain["reason"]
            assert f"{brand['brand']}: gate v2 {outcome} on " in result.stdout
        if outcome in {"champion", "challenger"}:  # the gate served the new version
            assert brand["switched_alias"] == outcome, brand
            assert brand["switch_seconds"] is not None, brand["problems"]
        else:
            assert brand["switched_alias"] is None, brand
            assert "v2 is not served" in brand["gate"], brand
        # A challenger starts an experiment, and the evaluator judged it; alpha's ended.
        experiment = brand["experiment"]
        if outcome == "challenger":
            assert experiment is not None and experiment["running"], experiment
            assert experiment["challenger_version"] == "2", experiment
            assert experiment["decision"] in {"continue", "promote", "stop"}, experiment
            assert f"{brand['brand']}: experiment {experiment['experiment_id']}" in result.stdout
            if brand["brand"] == "alpha":
                assert experiment["decision"] in {"promote", "stop"}, experiment
                assert experiment["applied"], experiment
                assert f"decision: {experiment['decision']}: " in result.stdout
        else:
            assert experiment is None or not experiment["running"], experiment
        variants = {row["variant"] for row in brand["online_ctr"]}
        assert variants >= {"champion" if brand["champion_after"] else "fallback"}, variants
        assert all(row["impressions"] > 0 for row in brand["online_ctr"])
    assert (state_dir / "report" / "ctr.png").read_bytes().startswith(b"\x89PNG")
    assert not (state_dir / "state.json").exists(), "the demo left a platform recorded"
    assert "demo finished in" in result.stdout
