"""A brand's SLO alerts: generated from its brand file, kept as Prometheus rule YAML.

One list of ``AlertRule``s feeds two outputs, so what ``promtool test rules`` proves
is exactly what Azure Monitor evaluates: ``rule_file`` (a Prometheus rule file) and
``create_rule_group`` (an Azure Monitor ``PrometheusRuleGroup`` on the environment's
managed Prometheus workspace).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import pulumi
import pulumi_azure_native as azure_native
import yaml
from ranking_features import metric_names
from ranking_features.brand import Brand
from ranking_features.mlflow_names import CHAMPION

from infra.brand_inputs import BrandPlatform
from infra.brand_names import BrandNames

ERROR_RATIO_THRESHOLD = 0.05
"""Share of the /rank requests the service tried to answer that failed on its side (5xx)."""
REFUSED_RATIO_THRESHOLD = 0.25
"""Share of /rank requests refused as the client's fault (401, 403, 413, 422): worth a look
(a client with a stale key or a broken release), never a page, whoever sends them."""
FALLBACK_RATIO_THRESHOLD = 0.10
"""Share of /rank requests answered without a model; above it the model path is broken."""
RATE_WINDOW = "5m"
FEEDBACK_WINDOW = "1h"
SHIPPING_WINDOW = "30m"
EVALUATION_INTERVAL_MINUTES = 1
EXPERIMENT_OVERDUE_GRACE = timedelta(hours=2)
"""Past ``promotion.max_experiment_days`` the hourly evaluator stops the experiment on its next
run and the service drops the challenger on its next reload: two evaluator runs of grace."""

# The `outcome` label of recplat_rank_requests_total (ranking_service.app counts them).
ATTEMPTED_OUTCOMES = "ok|fallback|error"
"""Requests the service tried to answer: what a server error ratio is a share of."""
REFUSED_OUTCOMES = "unauthorized|invalid|too_large"


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule, in the terms both Prometheus and Azure Monitor understand."""

    alert: str
    expr: str
    for_minutes: int
    severity: int
    """Azure Monitor severity, 0 (critical) to 4 (verbose)."""
    summary: str

    def as_prometheus(self, brand: str) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "expr": self.expr,
            "for": f"{self.for_minutes}m",
            "labels": {"brand": brand, "severity": str(self.severity)},
            "annotations": {"summary": self.summary},
        }


def _cron_field(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            start, stop = low, high
        elif "-" in span:
            start_text, stop_text = span.split("-")
            start, stop = int(start_text), int(stop_text)
        else:
            start = int(span)
            stop = high if step_text else start
        values.update(range(start, stop + 1, step))
    return values


def training_interval(schedule: str) -> timedelta:
    """The longest gap between two runs of a 5-field cron ``schedule``.

    The longest gap, not the typical one, is what a staleness alert must allow:
    ``30 4 * * 1-5`` runs daily but leaves 72 hours over each weekend. Eight years
    of days are walked so that even a February-29th schedule shows its real gap.
    """
    minute_text, hour_text, dom_text, month_text, dow_text = schedule.split()
    minutes = sorted(_cron_field(minute_text, 0, 59))
    hours = sorted(_cron_field(hour_text, 0, 23))
    days_of_month = _cron_field(dom_text, 1, 31)
    months = _cron_field(month_text, 1, 12)
    # Cron counts Sunday as 0 or 7; Python's isoweekday counts it as 7.
    days_of_week = {7 if day == 0 else day for day in _cron_field(dow_text, 0, 7)}
    # Vixie cron: when both day fields are restricted, a day matching either runs.
    either_day = not dom_text.startswith("*") and not dow_text.startswith("*")

    times_of_day = [hour * 60 + minute for hour in hours for minute in minutes]
    longest = timedelta(
        minutes=max([later - earlier for earlier, later in itertools.pairwise(times_of_day)] or [0])
    )
    first, last = timedelta(minutes=times_of_day[0]), timedelta(minutes=times_of_day[-1])
    previous_last: datetime | None = None
    start = date(2024, 1, 1)
    for offset in range(8 * 366):
        day = start + timedelta(days=offset)
        if day.month not in months:
            continue
        dom_match = day.day in days_of_month
        dow_match = day.isoweekday() in days_of_week
        if not (dom_match or dow_match if either_day else dom_match and dow_match):
            continue
        midnight = datetime.combine(day, time())
        if previous_last is not None:
            longest = max(longest, midnight + first - previous_last)
        previous_last = midnight + last
    if previous_last is None:
        raise ValueError(f"cron schedule {schedule!r} never runs")
    return longest


def brand_alert_rules(brand: Brand, environment: str) -> list[AlertRule]:
    """The SLO alerts of ``brand`` (already merged for ``environment``)."""
    selector = f'brand="{brand.name}"'
    answered = f'recplat_rank_requests_total{{{selector},outcome=~"ok|fallback"}}'
    all_requests = f"sum(rate(recplat_rank_requests_total{{{selector}}}[{RATE_WINDOW}]))"
    slo_seconds = brand.serving.latency_slo_ms / 1000
    stale_after = 2 * training_interval(brand.training.schedule)
    max_days = brand.training.promotion.max_experiment_days
    overdue_after = timedelta(days=max_days) + EXPERIMENT_OVERDUE_GRACE
    rules = [
        AlertRule(
            alert="RecplatRankLatencyP99AboveSlo",
            expr=(
                "histogram_quantile(0.99, sum by (le) (rate("
                f"recplat_rank_latency_seconds_bucket{{{selector}}}[{RATE_WINDOW}]))) "
                f"> {slo_seconds:g}"
            ),
            for_minutes=10,
            severity=2,
            summary=(
                f"{brand.name}: p99 /rank latency above its {brand.serving.latency_slo_ms} ms SLO"
            ),
        ),
        AlertRule(
            # Refused requests are neither counted nor diluting: a flood of anonymous or
            # malformed requests must not page on-call, nor hide real server errors.
            alert="RecplatRankErrorRatioHigh",
            expr=(
                f'sum(rate(recplat_rank_requests_total{{{selector},outcome="error"}}'
                f"[{RATE_WINDOW}])) / sum(rate(recplat_rank_requests_total{{{selector},"
                f'outcome=~"{ATTEMPTED_OUTCOMES}"}}[{RATE_WINDOW}])) '
                f"> {ERROR_RATIO_THRESHOLD:g}"
            ),
            for_minutes=10,
            severity=2,
            summary=(
                f"{brand.name}: more than {ERROR_RATIO_THRESHOLD:.0%} of /rank requests fail "
                "with a server error"
            ),
        ),
        AlertRule(
            alert="RecplatRankRefusedRatioHigh",
            expr=(
                f'sum(rate(recplat_rank_requests_total{{{selector},outcome=~"{REFUSED_OUTCOMES}"}}'
                f"[{RATE_WINDOW}])) / {all_requests} > {REFUSED_RATIO_THRESHOLD:g}"
            ),
            for_minutes=30,
            severity=3,
            summary=(
                f"{brand.name}: more than {REFUSED_RATIO_THRESHOLD:.0%} of /rank requests "
                "refused (401/403 key, 413 size, 422 body): a client or an intruder"
            ),
        ),
        AlertRule(
            alert="RecplatFallbackRatioHigh",
            expr=(
                f"sum(rate(recplat_fallback_total{{{selector}}}[{RATE_WINDOW}])) / "
                f"sum(rate({answered}[{RATE_WINDOW}])) > {FALLBACK_RATIO_THRESHOLD:g}"
            ),
            for_minutes=15,
            severity=3,
            summary=(
                f"{brand.name}: more than {FALLBACK_RATIO_THRESHOLD:.0%} of rankings "
                "served without a model"
            ),
        ),
        AlertRule(
            alert="RecplatModelStale",
            expr=(
                f'max(recplat_model_age_seconds{{{selector},alias="{CHAMPION}"}}) '
                f"> {int(stale_after.total_seconds())}"
            ),
            for_minutes=15,
            severity=3,
            summary=(
                f"{brand.name}: the champion model is older than twice the training "
                f"interval ({stale_after})"
            ),
        ),
        # The evaluator CronJob (infra/brand_training.py) ends every experiment by its maximum
        # duration; one still served past it means the evaluator is not running or failing.
        AlertRule(
            alert="RecplatExperimentOverdue",
            expr=(
                f"max(recplat_experiment_age_seconds{{{selector}}}) "
                f"> {int(overdue_after.total_seconds())}"
            ),
            for_minutes=30,
            severity=3,
            summary=(
                f"{brand.name}: an online experiment has run past promotion.max_experiment_days "
                f"({max_days:g} days); is the experiments CronJob running? See "
                f"`ranking-experiments status`"
            ),
        ),
        # The event log is a small emptyDir: feedback that cannot ship fills it until the
        # pod is evicted with every event not yet in the lake.
        AlertRule(
            alert="RecplatEventShipFailing",
            expr=(f"sum(rate(recplat_event_ship_failures_total{{{selector}}}[{RATE_WINDOW}])) > 0"),
            for_minutes=15,
            severity=2,
            summary=f"{brand.name}: event segments have failed to ship to the lake for 15 minutes",
        ),
        AlertRule(
            alert="RecplatEventSegmentsQuarantined",
            expr=f"max(recplat_events_quarantined_segments{{{selector}}}) > 0",
            for_minutes=1,
            severity=2,
            summary=(
                f"{brand.name}: event segments that cannot be shipped are quarantined on a "
                "pod's local disk; copy them out of <event log>/quarantine before the pod goes"
            ),
        ),
        AlertRule(
            alert="RecplatEventsPendingGrowing",
            expr=(
                f"max(min_over_time(recplat_events_pending_segments{{{selector}}}"
                f"[{SHIPPING_WINDOW}]) > 0 and delta(recplat_events_pending_segments"
                f"{{{selector}}}[{SHIPPING_WINDOW}]) > 0)"
            ),
            for_minutes=5,
            severity=2,
            summary=(
                f"{brand.name}: event segments waiting to ship have grown for "
                f"{SHIPPING_WINDOW}; the pod's event log disk is filling up"
            ),
        ),
    ]
    rules.append(feature_drift_rule(brand))
    if environment == "prod":
        # Traffic without feedback means the loop that trains tomorrow's model is broken.
        rules.append(
            AlertRule(
                alert="RecplatNoFeedbackEvents",
                expr=(
                    f"sum(increase({answered}[{FEEDBACK_WINDOW}])) > 0 unless "
                    f"sum(increase(recplat_feedback_events_total{{{selector}}}"
                    f"[{FEEDBACK_WINDOW}])) > 0"
                ),
                for_minutes=30,
                severity=2,
                summary=f"{brand.name}: rankings served but no feedback events for an hour",
            )
        )
    return rules


def feature_drift_rule(brand: Brand) -> AlertRule:
    """A feature of the champion's served traffic past the brand's PSI threshold.

    The PSI changes only when the drift job runs (hourly, over a day of sampled rows), so
    holding it for minutes would only delay the alert; what keeps noise from firing it is the
    threshold's distance from the PSI of sampling noise (``monitoring.drift_min_rows``).
    A warning, not a page: the model still serves, on traffic it was not trained for.
    """
    threshold = brand.monitoring.drift_psi_threshold
    return AlertRule(
        alert="RecplatFeatureDrift",
        expr=(
            f"max by (feature, model_version) ({metric_names.FEATURE_DRIFT.name}"
            f'{{brand="{brand.name}"}}) > {threshold:g}'
        ),
        for_minutes=0,
        severity=3,
        summary=(
            f"{brand.name}: a feature of the champion's served traffic drifted from its "
            f"training distribution (PSI above monitoring.drift_psi_threshold {threshold:g}); "
            "see the brand dashboard's feature drift panel and `ranking-experiments drift`"
        ),
    )


def rule_file(names: BrandNames, rules: list[AlertRule]) -> str:
    """The rules as a Prometheus rule file, the form ``promtool`` checks and tests."""
    group = {
        "name": names.rule_group,
        "interval": f"{EVALUATION_INTERVAL_MINUTES}m",
        "rules": [rule.as_prometheus(names.brand) for rule in rules],
    }
    return yaml.safe_dump({"groups": [group]}, sort_keys=False)


def create_rule_group(
    logical_name: str,
    names: BrandNames,
    rules: list[AlertRule],
    platform: BrandPlatform,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> azure_native.alertsmanagement.PrometheusRuleGroup:
    """The rules as an Azure Monitor rule group on the environment's managed Prometheus."""
    return azure_native.alertsmanagement.PrometheusRuleGroup(
        logical_name,
        rule_group_name=names.rule_group,
        resource_group_name=platform.resource_group_name,
        location=platform.location,
        cluster_name=platform.cluster_name,
        scopes=[platform.azure_monitor_workspace_id],
        description=f"SLO alerts of brand {names.brand} ({names.environment})",
        enabled=True,
        interval=f"PT{EVALUATION_INTERVAL_MINUTES}M",
        tags=tags,
        rules=[
            azure_native.alertsmanagement.PrometheusRuleArgs(
                alert=rule.alert,
                expression=rule.expr,
                for_=f"PT{rule.for_minutes}M",
                severity=rule.severity,
                enabled=True,
                labels={"brand": names.brand},
                annotations={"summary": rule.summary},
                actions=[
                    azure_native.alertsmanagement.PrometheusRuleGroupActionArgs(
                        action_group_id=platform.action_group_id
                    )
                ],
                resolve_configuration=azure_native.alertsmanagement.PrometheusRuleResolveConfigurationArgs(
                    auto_resolved=True, time_to_resolve="PT10M"
                ),
            )
            for rule in rules
        ],
        opts=opts,
    )
