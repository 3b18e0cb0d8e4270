"""The Pulumi program: read the stack config, build the environment, stamp every brand.

Brands come from ``brands/*.yaml`` (or ``$RECPLAT_BRANDS_DIR``); a brand is stamped
into this stack when its file lists the stack under ``environments``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pulumi
from ranking_features.brand import brands_for_environment, load_brands

from infra.brand_names import brand_names
from infra.brand_stack import BrandStack, BrandStackArgs
from infra.config import load_stack_config
from infra.dashboards.brand_dashboard import BrandDashboardArgs
from infra.environment import Environment, EnvironmentArgs

BRANDS_DIR = Path(
    os.environ.get("RECPLAT_BRANDS_DIR", Path(__file__).resolve().parent.parent / "brands")
)

config = load_stack_config()
brands = brands_for_environment(load_brands(BRANDS_DIR), config.stack)

environment = Environment(
    "recplat",
    EnvironmentArgs(
        config=config,
        brand_lake_containers=[
            brand_names(brand.name, config.stack).lake_container for brand in brands
        ],
        dashboard_brands=[BrandDashboardArgs.from_brand(brand) for brand in brands],
    ),
)
# Each BrandStack reserves its own MLflow names before its workloads start.
for brand in brands:
    BrandStack(brand.name, BrandStackArgs(brand=brand, platform=environment.platform))

pulumi.export("resourceGroupName", environment.resource_group_name)
pulumi.export("clusterName", environment.cluster_name)
pulumi.export("oidcIssuerUrl", environment.oidc_issuer_url)
pulumi.export("lakeAccountName", environment.lake_account_name)
pulumi.export("mlflowTrackingUri", environment.platform.mlflow_tracking_uri)
pulumi.export("grafanaUrl", environment.grafana_url)
pulumi.export("kubeconfig", environment.kubeconfig)
pulumi.export("brands", sorted(brand.name for brand in brands))
