"""BrandMonitoring: a brand's alert rules on managed Prometheus and its Azure dashboard.

What the rules and the dashboard say is defined in ``infra.brand_alerts`` and
``infra.dashboards``; this component only places them in the environment's monitoring
workspace and resource group, tagged with the brand.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from ranking_features.brand import Brand

from infra.brand_alerts import brand_alert_rules, create_rule_group, rule_file
from infra.brand_inputs import BrandPlatform
from infra.brand_moves import child_options
from infra.brand_names import BrandNames
from infra.dashboards.azure_dashboard import AzureDashboard, AzureDashboardArgs
from infra.dashboards.brand_dashboard import BrandDashboardArgs, brand_dashboard
from infra.dashboards.panels import dashboard_json


@dataclass(frozen=True)
class BrandMonitoringArgs:
    """The brand (its SLOs and schedule), its names and tags, and the environment."""

    brand: Brand
    names: BrandNames
    tags: dict[str, str]
    platform: BrandPlatform
    moved_from: pulumi.Resource | None = None
    """The children's former parent (``infra.brand_moves``)."""


class BrandMonitoring(pulumi.ComponentResource):
    """The brand's Prometheus rule group and dashboard."""

    rule_file: str
    """The brand's alert rules as a Prometheus rule file (what ``promtool`` tests)."""

    def __init__(
        self, name: str, args: BrandMonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:brand:BrandMonitoring", name, None, opts)
        brand, platform = args.brand, args.platform
        child = child_options(self, args.moved_from)
        rules = brand_alert_rules(brand, platform.environment)
        self.rule_file = rule_file(args.names, rules)
        create_rule_group(f"{brand.name}-alerts", args.names, rules, platform, args.tags, child)
        AzureDashboard(
            f"{brand.name}-dashboard",
            AzureDashboardArgs(
                dashboard_name=f"recplat-{platform.environment}-{brand.name}",
                definition=dashboard_json(brand_dashboard(BrandDashboardArgs.from_brand(brand))),
                resource_group_name=platform.resource_group_name,
                location=platform.location,
                tags=args.tags,
            ),
            opts=child,
        )
        self.register_outputs({})
