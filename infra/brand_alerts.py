"""A brand's SLO alerts: generated from its brand file, kept as Prometheus rule YAML.

One list of ``AlertRule``s feeds two outputs, so what ``promtool test rules`` proves
is exactly what Azure Monitor evaluates: ``rule_file`` (a Prometheus rule file) and
``create_rule_group`` (an Azure Monitor ``PrometheusRuleGroup`` on the environment's
managed Prometheus workspace).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pulumi
import pulumi_azure_native as azure_native
import yaml
from cronsim import CronSim, CronSimError
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

# Values of the `outcome` label of RANK_REQUESTS, as PromQL regular expressions.
ANSWERED_OUTCOMES = "|".join(metric_names.ANSWERED_OUTCOMES)
ATTEMPTED_OUTCOMES = "|".join(metric_names.ATTEMPTED_OUTCOMES)
"""Requests the service tried to answer: what a server error ratio is a share of."""
REFUSED_OUTCOMES = "|".join(metric_names.REFUSED_OUTCOMES)


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


CRON_HORIZON_YEARS = 8
"""Years of days a schedule is walked: from 2024, two February 29ths, so even a schedule of
that day alone shows its real gap."""
_CRON_START = datetime(2024, 1, 1)


def _runs(expression: str, start: datetime, end: datetime) -> Iterator[datetime]:
    """The runs of a cron ``expression`` from ``start`` (included) to ``end`` (excluded)."""
    # CronSim ticks before it matches: start a second early so that ``start`` itself counts.
    for run in CronSim(expression, start - timedelta(seconds=1)):
        if run >= end:
            return
        yield run


@functools.cache
def training_interval(schedule: str) -> timedelta:
    """The longest gap between two runs of a 5-field cron ``schedule``.

    The longest gap, not the typical one, is what a staleness alert must allow:
    ``30 4 * * 1-5`` runs daily but leaves 72 hours over each weekend. cronsim (Debian cron's
    rules: a day matching either restricted day field runs) finds the times of day and the
    days of the schedule separately, so a run every minute costs one day of runs, not eight
    years of them.
    """
    try:
        minute, hour, day_of_month, month, day_of_week = schedule.split()
        times = list(_runs(f"{minute} {hour} * * *", _CRON_START, _CRON_START + timedelta(1)))
        end = _CRON_START.replace(year=_CRON_START.year + CRON_HORIZON_YEARS)
        days = list(_runs(f"0 0 {day_of_month} {month} {day_of_week}", _CRON_START, end))
    except (CronSimError, ValueError) as error:
        raise ValueError(
            f"cron schedule {schedule!r} never runs or is not cron: {error}"
        ) from error
    if len(days) < 2:
        raise ValueError(
            f"cron schedule {schedule!r} runs on {len(days)} day(s) in {CRON_HORIZON_YEARS} "
            "years: too rarely to say how stale its model may get"
        )
    within_a_day = [later - earlier for earlier, later in itertools.pairwise(times)]
    # From a day's last run to the next run day's first.
    across_days = [later - earlier for earlier, later in itertools.pairwise(days)]
    overnight = [gap - (times[-1] - times[0]) for gap in across_days]
    return max([*within_a_day, *overnight, timedelta(0)])


def brand_alert_rules(brand: Brand, environment: str) -> list[AlertRule]:
    """The SLO alerts of ``brand`` (already merged for ``environment``)."""
    rules = [
        *_ranking_rules(brand),
        *_model_rules(brand),
        *_event_log_rules(brand),
        feature_drift_rule(brand),
    ]
    if environment == "prod":
        rules.append(_no_feedback_rule(brand))
    return rules


def _series(series: str, brand: Brand, matchers: str = "") -> str:
    """``series{brand="<brand>"<matchers>}``: ``matchers`` such as ``,alias="champion"``."""
    return f'{series}{{brand="{brand.name}"{matchers}}}'


def _rate(series: str, brand: Brand, matchers: str = "") -> str:
    return f"sum(rate({_series(series, brand, matchers)}[{RATE_WINDOW}]))"


def _ranking_rules(brand: Brand) -> list[AlertRule]:
    """/rank's latency against the brand's SLO, and its error, refused and fallback shares."""
    slo_seconds = brand.serving.latency_slo_ms / 1000
    requests = metric_names.RANK_REQUESTS.total
    answered = _rate(requests, brand, f',outcome=~"{ANSWERED_OUTCOMES}"')
    attempted = _rate(requests, brand, f',outcome=~"{ATTEMPTED_OUTCOMES}"')
    failed = _rate(requests, brand, ',outcome="error"')
    refused = _rate(requests, brand, f',outcome=~"{REFUSED_OUTCOMES}"')
    return [
        AlertRule(
            alert="RecplatRankLatencyP99AboveSlo",
            expr=(
                "histogram_quantile(0.99, sum by (le) (rate("
                f"{_series(metric_names.RANK_LATENCY.bucket, brand)}[{RATE_WINDOW}]))) "
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
            expr=f"{failed} / {attempted} > {ERROR_RATIO_THRESHOLD:g}",
            for_minutes=10,
            severity=2,
            summary=(
                f"{brand.name}: more than {ERROR_RATIO_THRESHOLD:.0%} of /rank requests fail "
                "with a server error"
            ),
        ),
        AlertRule(
            alert="RecplatRankRefusedRatioHigh",
            expr=(f"{refused} / {_rate(requests, brand)} > {REFUSED_RATIO_THRESHOLD:g}"),
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
                f"{_rate(metric_names.FALLBACK.total, brand)} / {answered} "
                f"> {FALLBACK_RATIO_THRESHOLD:g}"
            ),
            for_minutes=15,
            severity=3,
            summary=(
                f"{brand.name}: more than {FALLBACK_RATIO_THRESHOLD:.0%} of rankings "
                "served without a model"
            ),
        ),
    ]


def _model_rules(brand: Brand) -> list[AlertRule]:
    """A champion the training job has stopped replacing; an experiment nobody ended."""
    stale_after = 2 * training_interval(brand.training.schedule)
    max_days = brand.training.promotion.max_experiment_days
    overdue_after = timedelta(days=max_days) + EXPERIMENT_OVERDUE_GRACE
    champion_age = _series(metric_names.MODEL_AGE.name, brand, f',alias="{CHAMPION}"')
    return [
        AlertRule(
            alert="RecplatModelStale",
            expr=f"max({champion_age}) > {int(stale_after.total_seconds())}",
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
                f"max({_series(metric_names.EXPERIMENT_AGE.name, brand)}) "
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
    ]


def _event_log_rules(brand: Brand) -> list[AlertRule]:
    """Events that do not reach the lake.

    The event log is a small emptyDir: feedback that cannot ship fills it until the pod is
    evicted with every event not yet in the lake.
    """
    pending = _series(metric_names.EVENTS_PENDING.name, brand)
    return [
        AlertRule(
            alert="RecplatEventShipFailing",
            expr=f"{_rate(metric_names.EVENT_SHIP_FAILURES.total, brand)} > 0",
            for_minutes=15,
            severity=2,
            summary=f"{brand.name}: event segments have failed to ship to the lake for 15 minutes",
        ),
        AlertRule(
            alert="RecplatEventSegmentsQuarantined",
            expr=f"max({_series(metric_names.EVENTS_QUARANTINED.name, brand)}) > 0",
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
                f"max(min_over_time({pending}[{SHIPPING_WINDOW}]) > 0 "
                f"and delta({pending}[{SHIPPING_WINDOW}]) > 0)"
            ),
            for_minutes=5,
            severity=2,
            summary=(
                f"{brand.name}: event segments waiting to ship have grown for "
                f"{SHIPPING_WINDOW}; the pod's event log disk is filling up"
            ),
        ),
    ]


def _no_feedback_rule(brand: Brand) -> AlertRule:
    """Traffic without feedback: the loop that trains tomorrow's model is broken (prod only)."""
    answered = _series(metric_names.RANK_REQUESTS.total, brand, f',outcome=~"{ANSWERED_OUTCOMES}"')
    feedback = _series(metric_names.FEEDBACK_EVENTS.total, brand)
    return AlertRule(
        alert="RecplatNoFeedbackEvents",
        expr=(
            f"sum(increase({answered}[{FEEDBACK_WINDOW}])) > 0 unless "
            f"sum(increase({feedback}[{FEEDBACK_WINDOW}])) > 0"
        ),
        for_minutes=30,
        severity=2,
        summary=f"{brand.name}: rankings served but no feedback events for an hour",
    )


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
            f"max by (feature, model_version) "
            f"({_series(metric_names.FEATURE_DRIFT.name, brand)}) > {threshold:g}"
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
