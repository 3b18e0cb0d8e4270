"""The platform dashboard: every brand of the environment at a glance.

Traffic, p99 latency as a share of each brand's own SLO (one query per brand: the SLO is
in the brand file, not in Prometheus), server error and fallback ratios, champion model
age and running experiments. It links to the brand dashboards by their tag.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.models import dashboard as model
from ranking_features import metric_names as m
from ranking_features.mlflow_names import CHAMPION

from infra.brand_alerts import ERROR_RATIO_THRESHOLD, FALLBACK_RATIO_THRESHOLD
from infra.dashboards.brand_dashboard import BRAND_TAG, BrandDashboardArgs
from infra.dashboards.panels import (
    Panels,
    Size,
    new_dashboard,
    quantile,
    query,
    rate,
    ratio,
    selector,
    table_panel,
    time_series,
)

PLATFORM_UID = "recplat-platform"
BY_BRAND = ("brand",)


REQUESTS = m.RANK_REQUESTS.total


def platform_dashboard(
    environment: str, brands: Sequence[BrandDashboardArgs]
) -> builders.Dashboard:
    """The dashboard of every brand in ``environment``, in name order."""
    if not brands:
        raise ValueError(f"stack {environment}: the platform dashboard needs at least one brand")
    dashboard = new_dashboard(
        PLATFORM_UID,
        f"recplat / platform ({environment})",
        f"Every brand of the {environment} environment at a glance.",
        ["recplat-platform"],
    ).link(
        builders.DashboardLink("Brands")
        .type(model.DashboardLinkType.DASHBOARDS)
        .tags([BRAND_TAG])
        .as_dropdown(True)
        .keep_time(True)
    )
    for panel in [
        *_service_panels(sorted(brands, key=lambda brand: brand.brand)),
        *_model_panels(),
    ]:
        dashboard = dashboard.with_panel(panel)
    return dashboard


def _service_panels(ordered: Sequence[BrandDashboardArgs]) -> Panels:
    """Traffic, latency against each brand's SLO, server errors and fallbacks."""
    answered = selector(outcome="|".join(m.ANSWERED_OUTCOMES))
    attempted = selector(outcome="|".join(m.ATTEMPTED_OUTCOMES))
    return [
        time_series(
            "Traffic by brand",
            "POST /rank requests per second, refused ones included.",
            [query(rate(REQUESTS, "", BY_BRAND), "{{brand}}")],
            "reqps",
        ),
        time_series(
            "p99 latency / SLO",
            "Each brand's p99 /rank latency as a share of its own latency_slo_ms; above "
            "100 % the brand breaks its SLO.",
            [
                query(
                    f"{quantile(0.99, m.RANK_LATENCY, selector(brand=brand.brand))}"
                    f" / {brand.latency_slo_ms / 1000:g}",
                    f"{brand.brand} (SLO {brand.latency_slo_ms} ms)",
                )
                for brand in ordered
            ],
            "percentunit",
            line_at=1.0,
        ),
        time_series(
            "Server error ratio",
            "5xx share of the requests each service tried to answer.",
            [
                query(
                    ratio(
                        rate(REQUESTS, selector(outcome="error"), BY_BRAND),
                        rate(REQUESTS, attempted, BY_BRAND),
                    ),
                    "{{brand}}",
                )
            ],
            "percentunit",
            line_at=ERROR_RATIO_THRESHOLD,
        ),
        time_series(
            "Fallback ratio",
            "Share of answered requests ranked without a model.",
            [
                query(
                    ratio(
                        rate(m.FALLBACK.total, "", BY_BRAND),
                        rate(REQUESTS, answered, BY_BRAND),
                    ),
                    "{{brand}}",
                )
            ],
            "percentunit",
            line_at=FALLBACK_RATIO_THRESHOLD,
        ),
    ]


def _model_panels() -> Panels:
    """The champions' age and the running experiments."""
    return [
        time_series(
            "Champion model age",
            "Time since each brand's serving champion was registered.",
            [
                query(
                    f"max by (brand) ({m.MODEL_AGE.name}{selector(alias=CHAMPION)})",
                    "{{brand}}",
                )
            ],
            "s",
        ),
        table_panel(
            "Running experiments",
            "Per brand: 1 while a challenger takes traffic in an online experiment, its "
            "age, and the versions of both arms.",
            [
                query(f"max by (brand) ({m.EXPERIMENT_AGE.name} > bool 0)", "running"),
                query(f"max by (brand) ({m.EXPERIMENT_AGE.name})", "age"),
                query(f"max by (brand, alias) ({m.MODEL_VERSION.name})", "version"),
            ],
            Size(12, 8),
        ),
    ]
