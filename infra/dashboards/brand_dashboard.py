"""One brand's dashboard: traffic, latency against its SLO, the model path, models, feedback,
its online experiment and feature drift.

Built per brand from its brand file (the SLO line is the brand's ``latency_slo_ms``); the
brand is a hidden constant variable, so every query reads ``brand="$brand"`` and the
dashboard JSON says which brand it shows. Alert thresholds come from ``infra.brand_alerts``,
so a line on a panel is where the alert fires.
"""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as builders
from ranking_features import metric_names as m
from ranking_features.brand import Brand
from ranking_features.mlflow_names import CHALLENGER

from infra.brand_alerts import (
    ERROR_RATIO_THRESHOLD,
    FALLBACK_RATIO_THRESHOLD,
    REFUSED_RATIO_THRESHOLD,
)
from infra.dashboards.panels import (
    GRID_WIDTH,
    Panels,
    Size,
    new_dashboard,
    quantile,
    query,
    rate,
    ratio,
    selector,
    stat_panel,
    time_series,
)

BRAND_TAG = "recplat-brand"
BRAND = "$brand"


@dataclass(frozen=True)
class BrandDashboardArgs:
    """What a brand's dashboard shows: whose, and its latency SLO."""

    brand: str
    display_name: str
    latency_slo_ms: int

    @classmethod
    def from_brand(cls, brand: Brand) -> BrandDashboardArgs:
        """From a brand file (already merged for the environment)."""
        return cls(brand.name, brand.display_name, brand.serving.latency_slo_ms)

    def __post_init__(self) -> None:
        if self.latency_slo_ms <= 0:
            raise ValueError(
                f"brand {self.brand}: serving.latency_slo_ms: must be > 0, "
                f"got {self.latency_slo_ms}"
            )


def brand_dashboard_uid(brand: str) -> str:
    """Grafana uids are at most 40 characters; brand names at most 24."""
    return f"recplat-brand-{brand}"


THIS = selector(brand=BRAND)
ANSWERED = selector(brand=BRAND, outcome="|".join(m.ANSWERED_OUTCOMES))
REQUESTS = m.RANK_REQUESTS.total


def brand_dashboard(args: BrandDashboardArgs) -> builders.Dashboard:
    """The dashboard of ``args.brand``: one row per concern, top to bottom."""
    dashboard = new_dashboard(
        brand_dashboard_uid(args.brand),
        f"recplat / {args.display_name} ({args.brand})",
        f"How {args.brand}'s recommendations perform: its ranking service's metrics.",
        [BRAND_TAG],
    ).with_variable(builders.ConstantVariable("brand").value(args.brand))
    rows: list[tuple[str, Panels]] = [
        ("Traffic", _traffic()),
        ("Latency", _latency(args.latency_slo_ms)),
        ("Model path", _model_path()),
        ("Models", _models()),
        ("Feedback and online CTR", _feedback()),
        ("Online experiment", _experiment()),
        ("Feature drift", _feature_drift()),
    ]
    for title, panels in rows:
        dashboard = dashboard.with_row(builders.Row(title))
        for panel in panels:
            dashboard = dashboard.with_panel(panel)
    return dashboard


def _traffic() -> Panels:
    attempted = selector(brand=BRAND, outcome="|".join(m.ATTEMPTED_OUTCOMES))
    refused = selector(brand=BRAND, outcome="|".join(m.REFUSED_OUTCOMES))
    return [
        time_series(
            "Requests by variant and outcome",
            "POST /rank answers per second. Variant: the model alias that ranked "
            "(fallback: no model; none: refused before a variant was chosen).",
            [query(rate(REQUESTS, THIS, ("variant", "outcome")), "{{variant}} {{outcome}}")],
            "reqps",
        ),
        time_series(
            "Server errors and refused requests",
            "Errors: 5xx share of the requests the service tried to answer (alert at "
            f"{ERROR_RATIO_THRESHOLD:.0%}). Refused: 401/403/413/422 share of all requests "
            f"(worth a look above {REFUSED_RATIO_THRESHOLD:.0%}).",
            [
                query(
                    ratio(
                        rate(REQUESTS, selector(brand=BRAND, outcome="error")),
                        rate(REQUESTS, attempted),
                    ),
                    "errors",
                ),
                query(ratio(rate(REQUESTS, refused), rate(REQUESTS, THIS)), "refused"),
            ],
            "percentunit",
            line_at=ERROR_RATIO_THRESHOLD,
        ),
    ]


def _latency(latency_slo_ms: int) -> Panels:
    slo_seconds = latency_slo_ms / 1000
    return [
        time_series(
            f"Latency percentiles (SLO {latency_slo_ms} ms)",
            "Time to answer POST /rank; the dashed line is the brand's latency_slo_ms, "
            "which the p99 alert compares with.",
            [
                query(quantile(q, m.RANK_LATENCY, THIS), f"p{round(q * 100)}")
                for q in (0.5, 0.9, 0.99)
            ],
            "s",
            line_at=slo_seconds,
        ),
        time_series(
            "p99 latency by variant",
            "The challenger must not be the slow arm.",
            [query(quantile(0.99, m.RANK_LATENCY, THIS, ("variant",)), "{{variant}}")],
            "s",
            line_at=slo_seconds,
        ),
    ]


def _model_path() -> Panels:
    return [
        time_series(
            "Fallback ratio",
            "Share of answered requests ranked without a model (popularity or given order); "
            f"the alert fires above {FALLBACK_RATIO_THRESHOLD:.0%}.",
            [query(ratio(rate(m.FALLBACK.total, THIS), rate(REQUESTS, ANSWERED)), "fallback")],
            "percentunit",
            Size(8),
            line_at=FALLBACK_RATIO_THRESHOLD,
        ),
        time_series(
            "Fallbacks by reason",
            "no_model: nothing loaded yet; scoring_error: the model failed on a request.",
            [query(rate(m.FALLBACK.total, THIS, ("reason",)), "{{reason}}")],
            "reqps",
            Size(8),
        ),
        time_series(
            "Batch sizes",
            "Requests featurised and scored together by the adaptive batcher (1 when idle).",
            [
                query(quantile(0.5, m.RANK_BATCH_SIZE, THIS), "p50"),
                query(quantile(0.99, m.RANK_BATCH_SIZE, THIS), "p99"),
                query(
                    f"{rate(m.RANK_BATCH_SIZE.sum, THIS)} / {rate(m.RANK_BATCH_SIZE.count, THIS)}",
                    "mean",
                ),
            ],
            "short",
            Size(8),
        ),
    ]


def _models() -> Panels:
    return [
        stat_panel(
            "Model version per alias",
            "Registry version serving each alias (none: no version has the alias).",
            [query(f"max by (alias) ({m.MODEL_VERSION.name}{THIS})", "{{alias}}")],
            "none",
            Size(8, 6),
            mappings={"0": "none"},
        ),
        time_series(
            "Model age per alias",
            "Time since the serving version was registered; a champion older than twice "
            "the training interval raises the staleness alert.",
            [query(f"max by (alias) ({m.MODEL_AGE.name}{THIS})", "{{alias}}")],
            "s",
            Size(8, 6),
        ),
        time_series(
            "Model reloads",
            "Versions loaded, warmed up and swapped in, per alias, in the last hour.",
            [query(f"sum by (alias) (increase({m.MODEL_RELOADS.total}{THIS}[1h]))", "{{alias}}")],
            "short",
            Size(8, 6),
        ),
    ]


def _feedback() -> Panels:
    ctr = m.ONLINE_CTR.name
    return [
        time_series(
            "Feedback rate by type",
            "Feedback events accepted per second (click, conversion, dismiss).",
            [query(rate(m.FEEDBACK_EVENTS.total, THIS, ("type",)), "{{type}}")],
            "reqps",
        ),
        time_series(
            "Online CTR per model version",
            "Requests with a click / requests, per serving model version, with its "
            "user-clustered interval, as the experiment evaluator last measured it "
            "(docs/architecture.md, online experiments).",
            [
                query(f"{ctr}{selector(brand=BRAND, bound='estimate')}", "v{{model_version}}"),
                query(f"{ctr}{selector(brand=BRAND, bound='lower')}", "v{{model_version}} low"),
                query(f"{ctr}{selector(brand=BRAND, bound='upper')}", "v{{model_version}} high"),
            ],
            "percentunit",
        ),
    ]


def _experiment() -> Panels:
    return [
        stat_panel(
            "Experiment",
            "Whether a challenger takes traffic in an online experiment.",
            [query(f"max({m.EXPERIMENT_AGE.name}{THIS} > bool 0)", "experiment")],
            "none",
            Size(6, 6),
            mappings={"0": "none running", "1": "running"},
        ),
        stat_panel(
            "Experiment age",
            "Time since the running experiment started (its challenger's "
            "experiment.started_at); the evaluator must decide within "
            "promotion.max_experiment_days.",
            [query(f"max({m.EXPERIMENT_AGE.name}{THIS})", "age")],
            "s",
            Size(6, 6),
        ),
        time_series(
            "Challenger share of answered requests",
            "The experiment's traffic split as served (serving.challenger_traffic).",
            [
                query(
                    ratio(
                        rate(REQUESTS, selector(brand=BRAND, variant=CHALLENGER)),
                        rate(REQUESTS, ANSWERED),
                    ),
                    "challenger",
                )
            ],
            "percentunit",
            Size(12, 6),
        ),
    ]


def _feature_drift() -> Panels:
    return [
        time_series(
            "Feature drift (PSI per feature)",
            "Population stability index of each feature's served distribution against the "
            "serving version's training distribution; the threshold is the brand's.",
            [
                query(f"max by (feature) ({m.FEATURE_DRIFT.name}{THIS})", "{{feature}}"),
                query(f"max({m.FEATURE_DRIFT_THRESHOLD.name}{THIS})", "threshold"),
            ],
            "short",
            Size(GRID_WIDTH),
        )
    ]
