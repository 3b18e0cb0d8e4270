"""Brand SLO alerts: derived from the brand file, checked and unit-tested by promtool.

For every example brand in every environment it lists, the generated rule file is
checked with ``promtool check rules`` and run against a generated test file in which
each alert fires on a breaching series and stays silent on a healthy one.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from ranking_features.brand import Brand, load_brands

from infra.brand_alerts import (
    ERROR_RATIO_THRESHOLD,
    EXPERIMENT_OVERDUE_GRACE,
    FALLBACK_RATIO_THRESHOLD,
    brand_alert_rules,
    rule_file,
    training_interval,
)
from infra.brand_names import brand_names

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [
    (brand.for_environment(env), env.value)
    for brand in load_brands(REPO / "brands")
    for env in brand.environments
]


@pytest.mark.parametrize(
    ("schedule", "gap"),
    [
        ("0 3 * * *", timedelta(days=1)),
        ("15 */6 * * *", timedelta(hours=6)),
        ("*/5 * * * *", timedelta(minutes=5)),
        # Weekdays only: the weekend makes the longest gap three days.
        ("30 4 * * 1-5", timedelta(days=3)),
        ("0 1,13 * * *", timedelta(hours=12)),
        ("0 2 1 * *", timedelta(days=31)),
        # Both day fields restricted: cron runs on either (the 1st or any Monday).
        ("0 0 1 * 1", timedelta(days=7)),
        ("0 0 29 2 *", timedelta(days=4 * 365 + 1)),
        # February 29th or any Monday of February: from the last Monday of February 2027 (the
        # 22nd) to the first of February 2028 (the 7th).
        ("0 0 29 2 1", timedelta(days=350)),
        # Sunday is 0 and 7; names read as numbers.
        ("0 6 * * 0", timedelta(days=7)),
        ("0 6 * * 7", timedelta(days=7)),
        ("0 6 * * SAT,SUN", timedelta(days=6)),
        # The last day of February: from February 28th, 2027 to February 29th, 2028.
        ("0 0 L 2 *", timedelta(days=366)),
    ],
)
def test_training_interval_is_the_longest_gap_between_runs(schedule: str, gap: timedelta) -> None:
    assert training_interval(schedule) == gap


def test_a_schedule_that_never_runs_is_refused() -> None:
    with pytest.raises(ValueError, match=r"cron schedule '0 0 31 2 \*' never runs"):
        training_interval("0 0 31 2 *")


def test_a_schedule_too_rare_to_measure_is_refused() -> None:
    # A fifth Friday of February, i.e. a Friday the 29th: next in 2036, then 2064.
    with pytest.raises(ValueError, match=r"'0 0 \* 2 5#5' runs on 0 day\(s\) in 8 years"):
        training_interval("0 0 * 2 5#5")


def test_prod_alone_alerts_on_missing_feedback() -> None:
    brand = next(brand for brand, env in EXAMPLES if brand.name == "newsroom")
    prod = {rule.alert for rule in brand_alert_rules(brand, "prod")}
    dev = {rule.alert for rule in brand_alert_rules(brand, "dev")}
    assert prod - dev == {"RecplatNoFeedbackEvents"}
    assert dev == {
        "RecplatRankLatencyP99AboveSlo",
        "RecplatRankErrorRatioHigh",
        "RecplatRankRefusedRatioHigh",
        "RecplatFallbackRatioHigh",
        "RecplatModelStale",
        "RecplatExperimentOverdue",
        "RecplatEventShipFailing",
        "RecplatEventSegmentsQuarantined",
        "RecplatEventsPendingGrowing",
        "RecplatFeatureDrift",
    }


def _promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: install Debian's `prometheus` package (make setup does)"
    return path


DRIFT = "recplat_feature_drift_psi"
DRIFT_LABELS = {"feature": "user_log_clicks", "model_version": "7"}


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    text = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{text}}}", "values": values}


def _requests(brand: str, outcome: str, per_minute: int) -> dict[str, str]:
    labels = {"brand": brand, "variant": "champion", "outcome": outcome}
    return _series("recplat_rank_requests_total", labels, f"0+{per_minute}x120")


def _cases(brand: Brand, environment: str) -> dict[str, tuple[list[Any], list[Any]]]:
    """Per alert: series that breach it, and series that do not."""
    name = brand.name
    slo = brand.serving.latency_slo_ms / 1000

    def latency(fast_share: float) -> list[dict[str, str]]:
        # 100 requests a minute, `fast_share` of them at half the SLO, the rest at twice it.
        fast = round(100 * fast_share)
        buckets = {f"{slo / 2:g}": fast, f"{slo * 2:g}": 100, "+Inf": 100}
        return [
            _series(
                "recplat_rank_latency_seconds_bucket",
                {"brand": name, "variant": "champion", "le": le},
                f"0+{count}x120",
            )
            for le, count in buckets.items()
        ]

    failing = round(100 * ERROR_RATIO_THRESHOLD * 2)
    refused_flood = [
        _requests(name, outcome, 1000) for outcome in ("unauthorized", "invalid", "too_large")
    ]
    segments = {"brand": name, "kind": "feedback"}
    fallbacks = round(100 * FALLBACK_RATIO_THRESHOLD * 2)
    stale = int(2 * training_interval(brand.training.schedule).total_seconds())
    age = {"brand": name, "alias": "champion"}
    overdue = int(
        (
            timedelta(days=brand.training.promotion.max_experiment_days) + EXPERIMENT_OVERDUE_GRACE
        ).total_seconds()
    )
    experiment = {"brand": name}
    threshold = brand.monitoring.drift_psi_threshold
    cases: dict[str, tuple[list[Any], list[Any]]] = {
        "RecplatRankLatencyP99AboveSlo": (latency(0.0), latency(1.0)),
        "RecplatRankErrorRatioHigh": (
            [_requests(name, "ok", 100), _requests(name, "error", failing)],
            # Refused requests (401/403/413/422) are the client's doing: a flood of them,
            # anonymous or malformed, must not page on-call.
            [_requests(name, "ok", 100), _requests(name, "error", 1), *refused_flood],
        ),
        "RecplatRankRefusedRatioHigh": (
            [_requests(name, "ok", 100), *refused_flood],
            [_requests(name, "ok", 100), _requests(name, "unauthorized", 2)],
        ),
        "RecplatFallbackRatioHigh": (
            [
                _requests(name, "ok", 100 - fallbacks),
                _requests(name, "fallback", fallbacks),
                _series(
                    "recplat_fallback_total",
                    {"brand": name, "reason": "no_model"},
                    f"0+{fallbacks}x120",
                ),
            ],
            [
                _requests(name, "ok", 99),
                _requests(name, "fallback", 1),
                _series("recplat_fallback_total", {"brand": name, "reason": "no_model"}, "0+1x120"),
            ],
        ),
        "RecplatModelStale": (
            [_series("recplat_model_age_seconds", age, f"{stale + 3600}+60x120")],
            [_series("recplat_model_age_seconds", age, f"{stale // 4}+60x120")],
        ),
        "RecplatExperimentOverdue": (
            [_series("recplat_experiment_age_seconds", experiment, f"{overdue + 60}+60x120")],
            # A day before the limit, still running; and then no experiment at all (age 0).
            [
                _series(
                    "recplat_experiment_age_seconds", experiment, f"{overdue - 86_400}+60x60 0x60"
                )
            ],
        ),
        "RecplatEventShipFailing": (
            [_series("recplat_event_ship_failures_total", segments, "0+1x120")],
            # One failed upload, retried successfully, is not an outage.
            [_series("recplat_event_ship_failures_total", segments, "0x60 1x60")],
        ),
        "RecplatEventSegmentsQuarantined": (
            [_series("recplat_events_quarantined_segments", segments, "0x30 1x90")],
            [_series("recplat_events_quarantined_segments", segments, "0x120")],
        ),
        "RecplatEventsPendingGrowing": (
            [_series("recplat_events_pending_segments", {"brand": name}, "0x30 1+1x90")],
            # A few segments waiting, not growing (no traffic while the lake is away).
            [_series("recplat_events_pending_segments", {"brand": name}, "3x120")],
        ),
        # One feature past the threshold; every feature under it.
        "RecplatFeatureDrift": (
            [
                _series(DRIFT, {**DRIFT_LABELS, "brand": name}, f"{threshold * 1.5:g}x120"),
                _series(DRIFT, {**DRIFT_LABELS, "brand": name, "feature": "item_ctr"}, "0.01x120"),
            ],
            [_series(DRIFT, {**DRIFT_LABELS, "brand": name}, f"{threshold * 0.9:g}x120")],
        ),
    }
    if environment == "prod":
        feedback = {"brand": name, "type": "click"}
        cases["RecplatNoFeedbackEvents"] = (
            [_requests(name, "ok", 100)],
            [_requests(name, "ok", 100), _series("recplat_feedback_events_total", feedback,
                                                 "0+5x120")],
        )  # fmt: skip
    return cases


def _test_file(rules_path: Path, brand: Brand, environment: str) -> dict[str, Any]:
    rules = {rule.alert: rule for rule in brand_alert_rules(brand, environment)}
    tests = []
    cases = _cases(brand, environment)
    assert set(cases) == set(rules), "every alert needs a firing and a silent case"
    for alert, (breaching, healthy) in cases.items():
        rule = rules[alert]
        # Evaluate after the window has filled and the alert's `for` has elapsed.
        at = f"{rule.for_minutes + 75}m"
        labels = {"brand": brand.name, "severity": str(rule.severity)}
        if alert == "RecplatFeatureDrift":  # one alert per drifted feature of a version
            labels |= {key: DRIFT_LABELS[key] for key in ("feature", "model_version")}
        expected = {
            "exp_labels": labels,
            "exp_annotations": {"summary": rule.summary},
        }
        for series, alerts in ((breaching, [expected]), (healthy, [])):
            tests.append(
                {
                    "interval": "1m",
                    "input_series": series,
                    "alert_rule_test": [
                        {"eval_time": at, "alertname": alert, "exp_alerts": alerts}
                    ],
                }
            )
    return {"rule_files": [rules_path.name], "evaluation_interval": "1m", "tests": tests}


def _write_rules(tmp_path: Path, brand: Brand, environment: str) -> Path:
    names = brand_names(brand.name, environment)
    rules_path = tmp_path / f"{brand.name}.rules.yaml"
    rules_path.write_text(rule_file(names, brand_alert_rules(brand, environment)))
    return rules_path


def _promtool_test(tmp_path: Path, tests: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    tests_path = tmp_path / "rules.test.yaml"
    tests_path.write_text(yaml.safe_dump(tests))
    return subprocess.run(
        [_promtool(), "test", "rules", str(tests_path)],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip


@pytest.mark.parametrize(("brand", "environment"), EXAMPLES, ids=lambda v: getattr(v, "name", v))
def test_promtool_checks_and_tests_the_brand_rules(
    brand: Brand, environment: str, tmp_path: Path
) -> None:
    rules_path = _write_rules(tmp_path, brand, environment)
    check = subprocess.run(
        [_promtool(), "check", "rules", str(rules_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    run = _promtool_test(tmp_path, _test_file(rules_path, brand, environment))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout + run.stderr


def test_a_flood_of_refused_requests_pages_no_one_but_server_errors_do(tmp_path: Path) -> None:
    brand = next(brand for brand, env in EXAMPLES if env == "dev")
    rules = brand_alert_rules(brand, "dev")
    rules_path = _write_rules(tmp_path, brand, "dev")
    anonymous = [_requests(brand.name, "ok", 100)] + [
        _requests(brand.name, outcome, 1000) for outcome in ("unauthorized", "invalid", "too_large")
    ]
    failing = [*anonymous, _requests(brand.name, "error", 50)]

    def expect(firing: set[str]) -> list[dict[str, Any]]:
        return [
            {
                "eval_time": "90m",
                "alertname": rule.alert,
                "exp_alerts": [
                    {
                        "exp_labels": {"brand": brand.name, "severity": str(rule.severity)},
                        "exp_annotations": {"summary": rule.summary},
                    }
                ]
                if rule.alert in firing
                else [],
            }
            for rule in rules
        ]

    refused_only = {"RecplatRankRefusedRatioHigh"}
    tests = {
        "rule_files": [rules_path.name],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m", "input_series": anonymous, "alert_rule_test": expect(refused_only)},
            {
                "interval": "1m",
                "input_series": failing,
                "alert_rule_test": expect({*refused_only, "RecplatRankErrorRatioHigh"}),
            },
        ],
    }
    refused = next(rule for rule in rules if rule.alert == "RecplatRankRefusedRatioHigh")
    assert refused.severity > max(
        rule.severity for rule in rules if rule.alert == "RecplatRankErrorRatioHigh"
    ), "refused requests are informational, less severe than server errors"
    run = _promtool_test(tmp_path, tests)
    assert run.returncode == 0, run.stdout + run.stderr


def test_an_experiment_past_its_maximum_duration_alerts_once_the_evaluator_had_its_chance(
    tmp_path: Path,
) -> None:
    # newsroom allows 14 days (the schema's default): 14 days plus the grace is the line.
    brand = next(brand for brand, env in EXAMPLES if brand.name == "newsroom" and env == "prod")
    limit = brand.training.promotion.max_experiment_days * 86_400
    rules_path = _write_rules(tmp_path, brand, "prod")
    (rule,) = [r for r in brand_alert_rules(brand, "prod") if r.alert == "RecplatExperimentOverdue"]
    firing = {
        "exp_labels": {"brand": "newsroom", "severity": str(rule.severity)},
        "exp_annotations": {"summary": rule.summary},
    }
    age = {"brand": "newsroom"}
    cases = [
        # Just past max_experiment_days: the evaluator's next runs stop it; no alert yet.
        (f"{limit + 60}+60x100", []),
        # Three hours past it: the evaluator has not acted.
        (f"{limit + 3 * 3600}+60x100", [firing]),
    ]
    tests = {
        "rule_files": [rules_path.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [_series("recplat_experiment_age_seconds", age, values)],
                "alert_rule_test": [
                    {
                        "eval_time": "45m",
                        "alertname": "RecplatExperimentOverdue",
                        "exp_alerts": alerts,
                    }
                ],
            }
            for values, alerts in cases
        ],
    }
    run = _promtool_test(tmp_path, tests)
    assert run.returncode == 0, run.stdout + run.stderr
