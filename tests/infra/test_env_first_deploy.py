"""Issue 16: what Azure does on the first `pulumi up` that the plan must already allow for."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ranking_features.brand import brands_for_environment, load_brands

from infra.brand_alerts import brand_alert_rules
from infra.brand_names import NAMESPACE_COST_LABELS
from infra.cluster import ksm_label_name
from infra.config import SUPPORTED_KUBERNETES_MINORS, StackConfigError, parse_stack_config
from infra.monitoring import CONTAINER_INSIGHTS_ASSOCIATION, PLATFORM_RULES, rule_groups_from_yaml
from infra.prometheus_collection import (
    MINIMAL_KEEP_LISTS,
    SETTINGS_CONFIGMAP,
    keep_list_additions,
    kept_by_default,
    metric_names,
    parse_keep_list,
    settings_configmap_data,
    target_of,
)
from recplat.plan import Plan
from tests.infra.plan_queries import REPO_ROOT, STACKS, lookup, one, stack_file

BRANDS_DIR = REPO_ROOT / "brands"
CLUSTER = "azure-native:containerservice:ManagedCluster"


def _every_rule_expression(stack: str) -> list[str]:
    platform = [rule["expr"] for g in rule_groups_from_yaml(PLATFORM_RULES) for rule in g["rules"]]
    brands = brands_for_environment(load_brands(BRANDS_DIR), stack)
    return platform + [rule.expr for b in brands for rule in brand_alert_rules(b, stack)]


def _collected(metric: str, configmaps: list[dict[str, str]]) -> bool:
    target = target_of(metric)
    if target is None:  # a brand service's own metric, scraped by its PodMonitor
        return True
    extra = [parse_keep_list(data).get(target, "") for data in configmaps]
    return kept_by_default(metric, target) or any(
        pattern and re.fullmatch(pattern, metric) for pattern in extra
    )


@pytest.mark.parametrize("stack", STACKS)
def test_every_metric_an_alert_uses_is_kept_by_managed_prometheus(
    plan_for: Callable[[str, Path | None], Plan], stack: str
) -> None:
    """The minimal ingestion profile drops what is not on its keep lists; the settings
    ConfigMap, when planned, adds to them. An alert on a dropped metric never fires."""
    plan = plan_for(stack, BRANDS_DIR)
    configmaps = [
        r["inputs"]["data"]
        for r in plan.of_type("kubernetes:core/v1:ConfigMap")
        if lookup(r["inputs"], "metadata.name") == SETTINGS_CONFIGMAP
        and lookup(r["inputs"], "metadata.namespace") == "kube-system"
    ]
    used = {name for expr in _every_rule_expression(stack) for name in metric_names(expr)}
    assert "kube_job_failed" in used and "recplat_rank_requests_total" in used, used
    dropped = sorted(name for name in used if not _collected(name, configmaps))
    assert not dropped, f"stack {stack}: alerts use metrics managed Prometheus drops: {dropped}"


def test_the_old_training_job_metric_would_have_been_dropped() -> None:
    """``kube_job_status_failed`` (what TrainingJobFailed used) is off the kube-state keep list."""
    assert not kept_by_default("kube_job_status_failed", "kubestate")
    assert kept_by_default("kube_job_failed", "kubestate")


def test_a_rule_on_a_dropped_metric_gets_it_kept_through_the_settings_configmap() -> None:
    expr = 'kube_job_status_failed{namespace=~"brand-.*"} > 0 and on(namespace) up == 1'
    additions = keep_list_additions([expr, "sum by (le) (rate(node_load1[5m]))"])
    assert additions == {"kubestate": ["kube_job_status_failed"]}
    data = settings_configmap_data(additions)
    assert parse_keep_list(data) == {"kubestate": "kube_job_status_failed"}
    assert "minimalingestionprofile = true" in data["default-targets-metrics-keep-list"]
    assert set(parse_keep_list(settings_configmap_data({}))) == set()
    assert set(MINIMAL_KEEP_LISTS) <= {
        line.split("=")[0].strip()
        for line in data["default-targets-metrics-keep-list"].splitlines()
    }


def test_metric_names_ignore_functions_labels_and_grouping() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(recplat_rank_latency_seconds_bucket{brand="a",'
        'outcome=~"ok|error"}[5m]))) > 0.2 unless on(brand) kube_pod_info offset 1m'
    )
    assert metric_names(expr) == {"recplat_rank_latency_seconds_bucket", "kube_pod_info"}


def test_a_metric_from_no_collected_target_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="metric 'apiserver_request_total' comes from no target"):
        target_of("apiserver_request_total")


@pytest.mark.parametrize("stack", STACKS)
def test_kube_state_metrics_exports_the_brand_namespace_labels(
    plan_for: Callable[[str, Path | None], Plan], stack: str
) -> None:
    """KSM matches label keys exactly as the objects carry them (recplat.io/...) and exposes
    them on kube_namespace_labels as label_recplat_io_..., which the minimal profile keeps."""
    plan = plan_for(stack, BRANDS_DIR)
    allowlist = lookup(
        one(plan, CLUSTER)["inputs"],
        "azureMonitorProfile.metrics.kubeStateMetrics.metricLabelsAllowlist",
    )
    allowed = re.fullmatch(r"namespaces=\[(.*)\]", allowlist)
    assert allowed, allowlist
    keys = set(allowed.group(1).split(","))
    brand_namespaces = [
        r
        for r in plan.of_type("kubernetes:core/v1:Namespace")
        if str(lookup(r["inputs"], "metadata.name")).startswith("brand-")
    ]
    assert brand_namespaces
    for namespace in brand_namespaces:
        labels = lookup(namespace["inputs"], "metadata.labels")
        assert keys == set(NAMESPACE_COST_LABELS) <= set(labels), (namespace["urn"], keys)
    assert ksm_label_name("recplat.io/cost-center") == "label_recplat_io_cost_center"
    assert kept_by_default("kube_namespace_labels", "kubestate")


def test_a_kubernetes_version_out_of_support_is_refused_with_how_to_check() -> None:
    raw: dict[str, Any] = {"subscriptionId": "00000000-0000-4000-8000-00000000c0de"}
    config = {key.removeprefix("recplat:"): value for key, value in stack_file("dev").items()}
    raw.update({key: value for key, value in config.items() if ":" not in key})
    raw["location"] = "westeurope"
    raw["cluster"] = {**raw["cluster"], "kubernetesVersion": "1.33"}
    with pytest.raises(StackConfigError) as error:
        parse_stack_config("dev", raw)
    message = str(error.value)
    assert "recplat:cluster.kubernetesVersion" in message
    assert "az aks get-versions" in message
    assert all(minor in message for minor in SUPPORTED_KUBERNETES_MINORS)


@pytest.mark.parametrize("stack", STACKS)
def test_committed_stacks_use_a_supported_kubernetes_version(stack: str) -> None:
    version = str(stack_file(stack)["recplat:cluster"]["kubernetesVersion"])
    assert ".".join(version.split(".")[:2]) in SUPPORTED_KUBERNETES_MINORS


@pytest.mark.parametrize("stack", STACKS)
def test_the_committed_internal_ingress_opens_nothing_to_the_internet(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    for nsg in environment_plans[stack].of_type("azure-native:network:NetworkSecurityGroup"):
        rules = nsg["inputs"].get("securityRules") or []
        allows = [
            r for r in rules if r["access"] == "Allow" and r["sourceAddressPrefix"] == "Internet"
        ]
        assert not allows, (nsg["urn"], allows)
        assert any(r["name"] == "deny-internet-inbound" for r in rules), nsg["urn"]


def test_a_public_ingress_opens_https_on_the_node_subnet(tmp_path: Path) -> None:
    """Azure's default DenyAllInBound drops Internet clients of a public load balancer; the
    node subnet's NSG (not managed by AKS) must let exactly HTTPS in, and nothing else."""
    from recplat.plan import plan_stack

    (tmp_path / "Pulumi.dev.yaml").write_text(
        (REPO_ROOT / "Pulumi.dev.yaml")
        .read_text()
        .replace("exposure: internal", "exposure: public")
    )
    (tmp_path / "brands").mkdir()
    for package in ("infra", "recplat"):
        (tmp_path / package).symlink_to(REPO_ROOT / package)
    plan = plan_stack("dev", brands_dir=tmp_path / "brands", repo_root=tmp_path)
    nodes = one(plan, "azure-native:network:NetworkSecurityGroup", "nsg-nodes")
    allows = [r for r in nodes["inputs"]["securityRules"] if r["access"] == "Allow"]
    assert allows == [
        {
            "name": "allow-internet-https-to-ingress",
            "priority": 1000,
            "direction": "Inbound",
            "access": "Allow",
            "protocol": "Tcp",
            "sourceAddressPrefix": "Internet",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "destinationPortRange": "443",
        }
    ], nodes["urn"]
    for nsg in plan.of_type("azure-native:network:NetworkSecurityGroup"):
        if nsg is not nodes:
            assert all(r["access"] == "Deny" for r in nsg["inputs"]["securityRules"]), nsg["urn"]


@pytest.mark.parametrize("stack", STACKS)
def test_container_insights_has_its_rule_and_association_for_managed_identity_auth(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    plan = environment_plans[stack]
    cluster = one(plan, CLUSTER)
    assert lookup(cluster["inputs"], "addonProfiles.omsagent.config.useAADAuth") == "true"
    rule = one(plan, "azure-native:monitor:DataCollectionRule", "container-insights-dcr")
    (extension,) = lookup(rule["inputs"], "dataSources.extensions")
    assert extension["extensionName"] == "ContainerInsights"
    assert extension["streams"] == ["Microsoft-ContainerInsights-Group-Default"]
    (destination,) = lookup(rule["inputs"], "destinations.logAnalytics")
    workspace = one(plan, "azure-native:operationalinsights:Workspace")
    assert workspace["urn"] in rule["dependencies"], rule["dependencies"]
    assert rule["inputs"]["dataFlows"] == [
        {
            "streams": ["Microsoft-ContainerInsights-Group-Default"],
            "destinations": [destination["name"]],
        }
    ]
    association = one(
        plan, "azure-native:monitor:DataCollectionRuleAssociation", "container-insights-association"
    )
    assert association["inputs"]["associationName"] == CONTAINER_INSIGHTS_ASSOCIATION
    assert (
        rule["urn"] in association["dependencies"] and cluster["urn"] in association["dependencies"]
    )


@pytest.mark.parametrize("stack", STACKS)
def test_the_deployer_can_open_grafana(environment_plans: dict[str, Plan], stack: str) -> None:
    plan = environment_plans[stack]
    grafana = one(plan, "azure-native:dashboard:Grafana")
    admins = [
        r
        for r in plan.of_type("azure-native:authorization:RoleAssignment")
        if str(r["inputs"]["roleDefinitionId"]).endswith("22926164-76b3-42b3-bc55-97df8dab3e41")
        and grafana["urn"] in r["dependencies"]
    ]
    from infra.plan_mocks import DEPLOYER_OBJECT_ID

    assert any(r["inputs"]["principalId"] == DEPLOYER_OBJECT_ID for r in admins), admins
