"""What AKS managed Prometheus collects, and the settings ConfigMap that makes it collect more.

The metrics add-on (``ama-metrics``) scrapes a few default targets and, with the
minimal ingestion profile on (the default), keeps only the metrics on each target's
keep list; anything else is dropped before it reaches the Azure Monitor workspace, so
an alert on it can never fire. ``MINIMAL_KEEP_LISTS`` copies those lists from the
agent (Azure/prometheus-collector, ``DefaultScrapeJobs[*].MinimalKeepListRegex``;
Microsoft Learn, "Default Prometheus metrics configuration in Azure Monitor").
``keep_list_additions`` finds what a set of rule expressions needs beyond them, and
``settings_configmap_data`` writes it as the ``ama-metrics-settings-configmap``
(``default-targets-metrics-keep-list``) the agent reads from ``kube-system``.
Metrics of recplat's own services come from each brand's PodMonitor, a custom scrape
job that no keep list filters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

SETTINGS_CONFIGMAP = "ama-metrics-settings-configmap"
SETTINGS_NAMESPACE = "kube-system"

# Keep-list regexes of the default targets that are on in AKS (prometheus-collector).
MINIMAL_KEEP_LISTS: dict[str, str] = {
    "kubelet": "kubelet_volume_stats_capacity_bytes|kubelet_volume_stats_used_bytes|"
    "kubelet_node_name|kubelet_running_pods|kubelet_running_pod_count|"
    "kubelet_running_sum_containers|kubelet_running_containers|kubelet_running_container_count|"
    "volume_manager_total_volumes|kubelet_node_config_error|kubelet_runtime_operations_total|"
    "kubelet_runtime_operations_errors_total|kubelet_runtime_operations_duration_seconds_bucket|"
    "kubelet_runtime_operations_duration_seconds_sum|"
    "kubelet_runtime_operations_duration_seconds_count|kubelet_pod_start_duration_seconds_bucket|"
    "kubelet_pod_start_duration_seconds_sum|kubelet_pod_start_duration_seconds_count|"
    "kubelet_pod_worker_duration_seconds_bucket|kubelet_pod_worker_duration_seconds_sum|"
    "kubelet_pod_worker_duration_seconds_count|storage_operation_duration_seconds_bucket|"
    "storage_operation_duration_seconds_sum|storage_operation_duration_seconds_count|"
    "storage_operation_errors_total|kubelet_cgroup_manager_duration_seconds_bucket|"
    "kubelet_cgroup_manager_duration_seconds_sum|kubelet_cgroup_manager_duration_seconds_count|"
    "kubelet_pleg_relist_interval_seconds_bucket|kubelet_pleg_relist_interval_seconds_count|"
    "kubelet_pleg_relist_interval_seconds_sum|kubelet_pleg_relist_duration_seconds_bucket|"
    "kubelet_pleg_relist_duration_seconds_count|kubelet_pleg_relist_duration_seconds_sum|"
    "rest_client_requests_total|rest_client_request_duration_seconds_bucket|"
    "rest_client_request_duration_seconds_sum|rest_client_request_duration_seconds_count|"
    "process_resident_memory_bytes|process_cpu_seconds_total|go_goroutines|"
    "kubernetes_build_info|kubelet_certificate_manager_client_ttl_seconds|"
    "kubelet_certificate_manager_client_expiration_renew_errors|"
    "kubelet_server_expiration_renew_errors|kubelet_certificate_manager_server_ttl_seconds|"
    "kubelet_volume_stats_available_bytes|kubelet_volume_stats_inodes_free|"
    "kubelet_volume_stats_inodes_used|kubelet_volume_stats_inodes|"
    "kube_persistentvolumeclaim_access_mode|kube_persistentvolumeclaim_labels|"
    "kube_persistentvolume_status_phase",
    "cadvisor": "container_spec_cpu_quota|container_spec_cpu_period|container_memory_rss|"
    "container_network_receive_bytes_total|container_network_transmit_bytes_total|"
    "container_network_receive_packets_total|container_network_transmit_packets_total|"
    "container_network_receive_packets_dropped_total|"
    "container_network_transmit_packets_dropped_total|container_fs_reads_total|"
    "container_fs_writes_total|container_fs_reads_bytes_total|container_fs_writes_bytes_total|"
    "container_cpu_usage_seconds_total|container_memory_working_set_bytes|"
    "container_memory_cache|container_memory_swap|container_cpu_cfs_throttled_periods_total|"
    "container_cpu_cfs_periods_total|kubernetes_build_info|container_start_time_seconds",
    "kubestate": "kube_job_status_succeeded|kube_job_spec_completions|"
    "kube_daemonset_status_desired_number_scheduled|"
    "kube_daemonset_status_current_number_scheduled|kube_daemonset_status_number_misscheduled|"
    "kube_daemonset_status_number_ready|kube_deployment_status_replicas_ready|"
    "kube_pod_container_status_last_terminated_reason|kube_pod_container_status_waiting_reason|"
    "kube_pod_container_status_restarts_total|kube_node_status_allocatable|kube_pod_owner|"
    "kube_pod_container_resource_requests|kube_pod_status_phase|"
    "kube_pod_container_resource_limits|kube_replicaset_owner|kube_resourcequota|"
    "kube_namespace_status_phase|kube_node_status_capacity|kube_node_info|kube_pod_info|"
    "kube_deployment_spec_replicas|kube_deployment_status_replicas_available|"
    "kube_deployment_status_replicas_updated|kube_statefulset_status_replicas_ready|"
    "kube_statefulset_status_replicas|kube_statefulset_status_replicas_updated|"
    "kube_job_status_start_time|kube_job_status_active|kube_job_failed|"
    "kube_horizontalpodautoscaler_status_desired_replicas|"
    "kube_horizontalpodautoscaler_status_current_replicas|"
    "kube_horizontalpodautoscaler_spec_min_replicas|"
    "kube_horizontalpodautoscaler_spec_max_replicas|kubernetes_build_info|"
    "kube_node_status_condition|kube_node_spec_taint|kube_pod_container_info|kube_.*_labels|"
    "kube_.*_annotations|kube_service_info|kube_pod_container_status_running|"
    "kube_pod_container_status_waiting|kube_pod_container_status_terminated|"
    "kube_pod_container_state_started|kube_pod_created|kube_pod_start_time|"
    "kube_pod_init_container_info|kube_pod_init_container_status_terminated|"
    "kube_pod_init_container_status_terminated_reason|kube_pod_init_container_status_ready|"
    "kube_pod_init_container_resource_limits|kube_pod_init_container_status_running|"
    "kube_pod_init_container_status_waiting|kube_pod_init_container_status_restarts_total|"
    "kube_pod_container_status_ready|kube_pod_init_container_*|kube_pod_deletion_timestamp|"
    "kube_pod_status_reason|kube_pod_init_container_resource_requests",
    "nodeexporter": "node_filesystem_readonly|node_memory_MemTotal_bytes|node_cpu_seconds_total|"
    "node_memory_MemAvailable_bytes|node_memory_Buffers_bytes|node_memory_Cached_bytes|"
    "node_memory_MemFree_bytes|node_memory_Slab_bytes|node_filesystem_avail_bytes|"
    "node_filesystem_size_bytes|node_time_seconds|node_exporter_build_info|node_load1|"
    "node_vmstat_pgmajfault|node_network_receive_bytes_total|node_network_transmit_bytes_total|"
    "node_network_receive_drop_total|node_network_transmit_drop_total|"
    "node_disk_io_time_seconds_total|node_disk_io_time_weighted_seconds_total|node_load5|"
    "node_load15|node_disk_read_bytes_total|node_disk_written_bytes_total|node_uname_info|"
    "kubernetes_build_info|node_boot_time_seconds",
}
# Which default target exposes a metric, by name prefix (the most specific first).
_TARGET_BY_PREFIX = (
    ("kubelet_", "kubelet"),
    ("kube_", "kubestate"),
    ("container_", "cadvisor"),
    ("node_", "nodeexporter"),
)
# Scraped by each brand's PodMonitor (infra/brand_service.py): custom jobs keep everything.
POD_MONITOR_PREFIX = "recplat_"
# Written by Prometheus for every scrape; metric relabelling (the keep lists) never sees them.
SYNTHETIC_SERIES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    }
)

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACES = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}
    | {"bool", "offset", "inf", "nan", "atan2"}
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords removed)."""
    text = _STRING.sub('""', expr)
    text = _BRACES.sub("{}", text)
    text = _RANGE.sub("[]", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}


def target_of(metric: str) -> str | None:
    """The default target that exposes ``metric``; ``None`` when no keep list applies to it
    (a brand service's metric, scraped by its PodMonitor, or a per-scrape synthetic series)."""
    if metric.startswith(POD_MONITOR_PREFIX) or metric in SYNTHETIC_SERIES:
        return None
    for prefix, target in _TARGET_BY_PREFIX:
        if metric.startswith(prefix):
            return target
    raise ValueError(
        f"metric {metric!r} comes from no target recplat collects (default targets: "
        f"{', '.join(sorted(MINIMAL_KEEP_LISTS))}; brand services: {POD_MONITOR_PREFIX}*); "
        "alert on a collected metric or add a scrape job for it"
    )


def kept_by_default(metric: str, target: str) -> bool:
    """Whether the minimal ingestion profile keeps ``metric`` from ``target`` (anchored regex)."""
    return re.fullmatch(MINIMAL_KEEP_LISTS[target], metric) is not None


def keep_list_additions(expressions: Iterable[str]) -> dict[str, list[str]]:
    """Per default target, the metrics the expressions use that its keep list drops."""
    additions: dict[str, set[str]] = {}
    for expr in expressions:
        for metric in metric_names(expr):
            target = target_of(metric)
            if target is not None and not kept_by_default(metric, target):
                additions.setdefault(target, set()).add(metric)
    return {target: sorted(metrics) for target, metrics in sorted(additions.items())}


def settings_configmap_data(additions: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """``ama-metrics-settings-configmap`` data (schema v1): the minimal ingestion profile stays
    on and each target's keep list gains exactly ``additions`` (anchored regex alternatives)."""
    lines = [
        f'{target} = "{"|".join(re.escape(metric) for metric in additions.get(target, ()))}"'
        for target in MINIMAL_KEEP_LISTS
    ]
    return {
        "schema-version": "v1",
        "config-version": "ver1",
        "default-targets-metrics-keep-list": "\n".join([*lines, "minimalingestionprofile = true"]),
    }


def parse_keep_list(data: Mapping[str, str]) -> dict[str, str]:
    """The per-target keep-list regexes of a settings ConfigMap's data (what the agent reads)."""
    result: dict[str, str] = {}
    for line in str(data.get("default-targets-metrics-keep-list", "")).splitlines():
        key, _, value = line.partition("=")
        value = value.strip().strip('"')
        if key.strip() in MINIMAL_KEEP_LISTS and value:
            result[key.strip()] = value
    return result
