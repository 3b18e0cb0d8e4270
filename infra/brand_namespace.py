"""A brand's namespace and its guard rails: labels, quota, limit range and network policies.

The namespace is the unit of isolation between brands. Its quota is sized from the
brand file so one brand cannot starve another, and its network policies deny all
traffic except the few flows a brand needs: the ingress controller and the metrics
scraper in, and DNS, the MLflow server and Azure endpoints (HTTPS) out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from ranking_features.brand import Brand

from infra.brand_names import BrandNames
from infra.network_rules import dns_egress_rule, namespace_selector

SERVICE_PORT = 8080
"""The port the service image runs ``ranking-serve`` on; /metrics is scraped there too."""
DASK_SCHEDULER_CPU_MILLI = 500
DASK_SCHEDULER_MEMORY_MI = 1024
CPU_LIMIT_FACTOR = 2
"""CPU limit over request: room to absorb a burst without being throttled at once."""
# Addresses that are never "Azure endpoints" from a pod: the cluster's own pods,
# Services and nodes, and so every other brand. Private endpoints are added back.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")

meta = k8s.meta.v1
core = k8s.core.v1
networking = k8s.networking.v1


def cpu_milli(quantity: str) -> int:
    """A brand file CPU quantity (``500m``, ``2``, ``1.5``) in millicores."""
    if quantity.endswith("m"):
        return int(quantity[:-1])
    return round(float(quantity) * 1000)


def memory_mi(quantity: str) -> int:
    """A brand file memory quantity (``512Mi``, ``2Gi``) in MiB."""
    match = re.fullmatch(r"([0-9]+)(Mi|Gi)", quantity)
    if match is None:
        raise ValueError(f"memory quantity {quantity!r}: expected <n>Mi or <n>Gi")
    return int(match[1]) * (1024 if match[2] == "Gi" else 1)


@dataclass(frozen=True)
class BrandCapacity:
    """What the brand may use at most at one time, in millicores and MiB of requests."""

    cpu_milli: int
    memory_mi: int
    pods: int

    @classmethod
    def of(cls, brand: Brand) -> BrandCapacity:
        serving, training = brand.serving, brand.training
        # One extra service pod: a rolling update surges by one (maxSurge 1).
        service_pods = serving.replicas.max + 1
        # Forbid keeps one training job at a time; on Dask it is the client plus a
        # scheduler and `workers` workers sized like the job.
        training_pods = 1 + training.workers
        cpu = service_pods * cpu_milli(serving.cpu) + training_pods * cpu_milli(training.cpu)
        memory = service_pods * memory_mi(serving.memory) + training_pods * memory_mi(
            training.memory
        )
        pods = service_pods + training_pods
        # The hourly experiment evaluator (sized like the job) may run beside a training run.
        cpu += cpu_milli(training.cpu)
        memory += memory_mi(training.memory)
        pods += 1
        if training.workers:
            cpu += DASK_SCHEDULER_CPU_MILLI
            memory += DASK_SCHEDULER_MEMORY_MI
            pods += 1
        return cls(cpu_milli=cpu, memory_mi=memory, pods=pods)


def create_namespace(
    brand: Brand,
    names: BrandNames,
    labels: dict[str, str],
    annotations: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.Namespace:
    """The brand namespace, with Pod Security Admission enforcing the restricted profile."""
    return core.Namespace(
        f"{brand.name}-namespace",
        metadata=meta.ObjectMetaArgs(
            name=names.namespace,
            labels={
                **labels,
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
            annotations=annotations,
        ),
        opts=opts,
    )


def create_guard_rails(
    brand: Brand,
    names: BrandNames,
    labels: dict[str, str],
    mlflow_namespace: str,
    mlflow_port: int,
    ingress_namespace: str,
    private_endpoint_cidrs: Sequence[str],
    opts: pulumi.ResourceOptions,
) -> list[pulumi.CustomResource]:
    """Quota, limit range and network policies of the brand namespace."""
    capacity = BrandCapacity.of(brand)
    largest_cpu = max(cpu_milli(brand.serving.cpu), cpu_milli(brand.training.cpu))
    largest_memory = max(memory_mi(brand.serving.memory), memory_mi(brand.training.memory))

    def metadata(name: str) -> meta.ObjectMetaArgs:
        return meta.ObjectMetaArgs(name=name, namespace=names.namespace, labels=labels)

    resources: list[pulumi.CustomResource] = [
        core.ResourceQuota(
            f"{brand.name}-quota",
            metadata=metadata("brand-quota"),
            spec=core.ResourceQuotaSpecArgs(
                hard={
                    "requests.cpu": f"{capacity.cpu_milli}m",
                    "requests.memory": f"{capacity.memory_mi}Mi",
                    "limits.cpu": f"{capacity.cpu_milli * CPU_LIMIT_FACTOR}m",
                    "limits.memory": f"{capacity.memory_mi}Mi",
                    "pods": str(capacity.pods),
                    # A brand is reached through the shared ingress only.
                    "services.loadbalancers": "0",
                    "services.nodeports": "0",
                    "persistentvolumeclaims": "0",
                }
            ),
            opts=opts,
        ),
        core.LimitRange(
            f"{brand.name}-limits",
            metadata=metadata("brand-limits"),
            spec=core.LimitRangeSpecArgs(
                limits=[
                    core.LimitRangeItemArgs(
                        type="Container",
                        default_request={"cpu": "100m", "memory": "128Mi"},
                        default={"cpu": "200m", "memory": "128Mi"},
                        max={
                            "cpu": f"{largest_cpu * CPU_LIMIT_FACTOR}m",
                            "memory": f"{largest_memory}Mi",
                        },
                    )
                ]
            ),
            opts=opts,
        ),
    ]
    resources.extend(
        _network_policies(
            brand,
            names,
            metadata,
            mlflow_namespace,
            mlflow_port,
            ingress_namespace,
            private_endpoint_cidrs,
            opts,
        )
    )
    return resources


def _network_policies(
    brand: Brand,
    names: BrandNames,
    metadata: Callable[[str], k8s.meta.v1.ObjectMetaArgs],
    mlflow_namespace: str,
    mlflow_port: int,
    ingress_namespace: str,
    private_endpoint_cidrs: Sequence[str],
    opts: pulumi.ResourceOptions,
) -> list[pulumi.CustomResource]:
    every_pod = meta.LabelSelectorArgs()
    service_pods = meta.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": "ranking"})
    policies = {
        # Everything not allowed below is denied, in both directions, for every pod.
        "default-deny": networking.NetworkPolicySpecArgs(
            pod_selector=every_pod, policy_types=["Ingress", "Egress"]
        ),
        "allow-ingress-controller": networking.NetworkPolicySpecArgs(
            pod_selector=service_pods,
            policy_types=["Ingress"],
            ingress=[
                networking.NetworkPolicyIngressRuleArgs(
                    from_=[
                        networking.NetworkPolicyPeerArgs(
                            namespace_selector=namespace_selector(ingress_namespace)
                        )
                    ],
                    ports=[networking.NetworkPolicyPortArgs(port=SERVICE_PORT, protocol="TCP")],
                )
            ],
        ),
        # AKS managed Prometheus scrapes from its ama-metrics pods in kube-system.
        "allow-metrics-scrape": networking.NetworkPolicySpecArgs(
            pod_selector=service_pods,
            policy_types=["Ingress"],
            ingress=[
                networking.NetworkPolicyIngressRuleArgs(
                    from_=[
                        networking.NetworkPolicyPeerArgs(
                            namespace_selector=namespace_selector("kube-system"),
                            pod_selector=meta.LabelSelectorArgs(
                                match_labels={"rsName": "ama-metrics"}
                            ),
                        )
                    ],
                    ports=[networking.NetworkPolicyPortArgs(port=SERVICE_PORT, protocol="TCP")],
                )
            ],
        ),
        "allow-egress-dns": networking.NetworkPolicySpecArgs(
            pod_selector=every_pod,
            policy_types=["Egress"],
            egress=[dns_egress_rule()],
        ),
        "allow-egress-mlflow": networking.NetworkPolicySpecArgs(
            pod_selector=every_pod,
            policy_types=["Egress"],
            egress=[
                networking.NetworkPolicyEgressRuleArgs(
                    to=[
                        networking.NetworkPolicyPeerArgs(
                            namespace_selector=namespace_selector(mlflow_namespace)
                        )
                    ],
                    ports=[networking.NetworkPolicyPortArgs(port=mlflow_port, protocol="TCP")],
                )
            ],
        ),
        # NetworkPolicy cannot name FQDNs or service tags, so "Azure endpoints" is HTTPS
        # to public addresses (Entra ID, Blob, Key Vault) plus the private endpoints;
        # the private ranges are excluded so this never opens a path to another brand.
        "allow-egress-azure": networking.NetworkPolicySpecArgs(
            pod_selector=every_pod,
            policy_types=["Egress"],
            egress=[
                networking.NetworkPolicyEgressRuleArgs(
                    to=[
                        networking.NetworkPolicyPeerArgs(
                            ip_block=networking.IPBlockArgs(
                                cidr="0.0.0.0/0", except_=list(PRIVATE_RANGES)
                            )
                        ),
                        *[
                            networking.NetworkPolicyPeerArgs(
                                ip_block=networking.IPBlockArgs(cidr=cidr)
                            )
                            for cidr in private_endpoint_cidrs
                        ],
                    ],
                    ports=[networking.NetworkPolicyPortArgs(port=443, protocol="TCP")],
                )
            ],
        ),
    }
    if brand.training.workers:
        # The job talks to its Dask scheduler, which talks to its workers. Peers without
        # a namespace selector are pods of this namespace only, so no brand reaches another.
        dask_pods = meta.LabelSelectorArgs(
            match_labels={"dask.org/cluster-name": names.dask_cluster}
        )
        training_pods = meta.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": "training"})
        policies["allow-dask-cluster"] = networking.NetworkPolicySpecArgs(
            pod_selector=dask_pods,
            policy_types=["Ingress", "Egress"],
            ingress=[
                networking.NetworkPolicyIngressRuleArgs(
                    from_=[
                        networking.NetworkPolicyPeerArgs(pod_selector=dask_pods),
                        networking.NetworkPolicyPeerArgs(pod_selector=training_pods),
                    ]
                )
            ],
            egress=[
                networking.NetworkPolicyEgressRuleArgs(
                    to=[networking.NetworkPolicyPeerArgs(pod_selector=dask_pods)]
                )
            ],
        )
        policies["allow-training-to-dask"] = networking.NetworkPolicySpecArgs(
            pod_selector=training_pods,
            policy_types=["Egress"],
            egress=[
                networking.NetworkPolicyEgressRuleArgs(
                    to=[networking.NetworkPolicyPeerArgs(pod_selector=dask_pods)]
                )
            ],
        )
    return [
        networking.NetworkPolicy(
            f"{brand.name}-netpol-{name}", metadata=metadata(name), spec=spec, opts=opts
        )
        for name, spec in policies.items()
    ]
