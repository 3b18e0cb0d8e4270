"""recplat's Grafana dashboards as code: one per environment, one per brand.

- ``panels``: the toolkit (PromQL from ``ranking_features.metric_names``, panel builders).
- ``platform_dashboard``, ``brand_dashboard``: one module per dashboard.
- ``queries``: every panel's PromQL read back from the JSON (what the tests run).
- ``azure_dashboard``: provisioning as Azure resources.
"""
