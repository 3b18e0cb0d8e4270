"""A brand's Dask cluster for training: a scheduler, workers only while a run needs them, and
the one path the Dask operator needs into it.

The training job's pod is the driver: it joins the scheduler (``--dask-scheduler``) and waits
for ``training.workers`` workers, which read the lake's day partitions, build the features and
fit where the rows are (docs/architecture.md, "Training on Dask"). Between runs the cluster
holds a scheduler and no worker. A ``DaskAutoscaler`` (0 to ``training.workers``) scales the
workers to the scheduler's adaptive target, which ``ranking_training.dask_scheduler`` (a
scheduler preload) makes ``training.workers`` while a client is connected: the workers come
when the driver joins and go, one quarter at a time, once it has disconnected, also when it
died without cleaning up.

The workers read the lake, so they run with the brand training's workload identity, and with
nothing else of the brand's: no secret, no MLflow user or URI (only the driver talks to
MLflow). The scheduler only coordinates, so no Azure token is projected into it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from ranking_features.workload_env import DaskSchedulerEnv

from infra.brand_namespace import DASK_SCHEDULER_CPU_MILLI, DASK_SCHEDULER_MEMORY_MI
from infra.brand_pods import (
    TMP_MOUNT,
    BrandWorkloadContext,
    resources,
    workload_identity_labels,
)
from infra.dask_operator import NAMESPACE as DASK_OPERATOR_NAMESPACE
from infra.network_rules import namespace_selector

core, meta, networking = k8s.core.v1, k8s.meta.v1, k8s.networking.v1

DASK_SCHEDULER_PORT = 8786
DASK_DASHBOARD_PORT = 8787
SCHEDULER_PRELOAD = "ranking_training.dask_scheduler"
"""Makes the scheduler's adaptive target the run's workers while a run is connected."""


@dataclass(frozen=True)
class DaskPods:
    """How the cluster's pods run, as the brand's training decides: its image, ServiceAccount,
    security contexts, sizing and scratch volume."""

    container: Callable[..., core.ContainerArgs]
    """``container(name, env=, args=, ports=, sizing=)``"""
    pod_spec: Callable[[core.ContainerArgs], core.PodSpecArgs]


@dataclass(frozen=True)
class BrandDaskArgs:
    """The brand's workload context, how its pods run, and the operator they need."""

    context: BrandWorkloadContext
    pods: DaskPods
    dask_operator: tuple[pulumi.Resource, ...] = ()
    """The operator's Helm release: it installs the Dask CRDs; without them the objects fail."""


class BrandDask(pulumi.ComponentResource):
    """The DaskCluster, its autoscaler and the operator's network path to the scheduler."""

    resources: list[pulumi.Resource]
    """What the training CronJobs wait for."""

    def __init__(
        self, name: str, args: BrandDaskArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:brand:BrandDask", name, None, opts)
        context = args.context
        children = context.options(self, depends_on=list(args.dask_operator))
        cluster = _dask_cluster(context, args.pods, children)
        autoscaler = _autoscaler(
            context,
            pulumi.ResourceOptions.merge(children, pulumi.ResourceOptions(depends_on=[cluster])),
        )
        self.resources = [cluster, autoscaler, _operator_reaches_scheduler(context, children)]
        self.register_outputs({"cluster": context.names.dask_cluster})


def _dask_cluster(
    context: BrandWorkloadContext, pods: DaskPods, opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    names = context.names
    tmp = core.EnvVarArgs(name="TMPDIR", value=TMP_MOUNT)
    worker = pods.container(
        "worker",
        env=[tmp],
        args=["dask", "worker", "--name", "$(DASK_WORKER_NAME)", "--dashboard-address", ":8788"],
    )
    scheduler = _scheduler_container(context, pods, tmp)
    return k8s.apiextensions.CustomResource(
        f"{context.brand.name}-dask-cluster",
        api_version="kubernetes.dask.org/v1",
        kind="DaskCluster",
        metadata=context.metadata(names.dask_cluster, "dask"),
        spec={
            "worker": {
                # The autoscaler owns the count: none stand between runs.
                "replicas": 0,
                "metadata": {"labels": {**context.labels, **workload_identity_labels()}},
                "spec": pods.pod_spec(worker),
            },
            "scheduler": {
                "metadata": {"labels": context.labels},
                "spec": pods.pod_spec(scheduler),
                "service": _scheduler_service(context),
            },
        },
        opts=opts,
    )


def _scheduler_container(
    context: BrandWorkloadContext, pods: DaskPods, tmp: core.EnvVarArgs
) -> core.ContainerArgs:
    """The scheduler: the Dask scheduler with the preload that scales workers for a run."""
    training = context.brand.training
    return pods.container(
        "scheduler",
        env=[
            tmp,
            *(
                core.EnvVarArgs(name=name, value=value)
                for name, value in DaskSchedulerEnv.variables(
                    training_workers=training.workers
                ).items()
            ),
        ],
        args=["dask", "scheduler", "--preload", SCHEDULER_PRELOAD],
        ports=[
            core.ContainerPortArgs(
                name="tcp-comm", container_port=DASK_SCHEDULER_PORT, protocol="TCP"
            ),
            core.ContainerPortArgs(
                name="http-dashboard", container_port=DASK_DASHBOARD_PORT, protocol="TCP"
            ),
        ],
        sizing=resources(f"{DASK_SCHEDULER_CPU_MILLI}m", f"{DASK_SCHEDULER_MEMORY_MI}Mi"),
    )


def _scheduler_service(context: BrandWorkloadContext) -> dict[str, Any]:
    """The scheduler's ClusterIP Service: its comm port for the driver and workers, the
    dashboard for the operator."""
    return {
        "type": "ClusterIP",
        "selector": _scheduler_selector(context),
        "ports": [
            {
                "name": name,
                "protocol": "TCP",
                "port": port,
                "targetPort": name,
            }
            for name, port in (
                ("tcp-comm", DASK_SCHEDULER_PORT),
                ("http-dashboard", DASK_DASHBOARD_PORT),
            )
        ],
    }


def _autoscaler(
    context: BrandWorkloadContext, opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    """Workers between 0 and ``training.workers``, at the scheduler's adaptive target."""
    return k8s.apiextensions.CustomResource(
        f"{context.brand.name}-dask-autoscaler",
        api_version="kubernetes.dask.org/v1",
        kind="DaskAutoscaler",
        metadata=context.metadata(context.names.dask_cluster, "dask"),
        spec={
            "cluster": context.names.dask_cluster,
            "minimum": 0,
            "maximum": context.brand.training.workers,
        },
        opts=opts,
    )


def _operator_reaches_scheduler(
    context: BrandWorkloadContext, opts: pulumi.ResourceOptions
) -> k8s.networking.v1.NetworkPolicy:
    """The operator, from its namespace, asks the scheduler for its adaptive target and to
    retire workers: over HTTP first (a 404 without the API route), then Dask's RPC. Only the
    scheduler and those two ports; the namespace's default-deny closes every other pod."""
    return networking.NetworkPolicy(
        f"{context.brand.name}-netpol-allow-dask-operator",
        metadata=context.metadata("allow-dask-operator"),
        spec=networking.NetworkPolicySpecArgs(
            pod_selector=meta.LabelSelectorArgs(match_labels=_scheduler_selector(context)),
            policy_types=["Ingress"],
            ingress=[
                networking.NetworkPolicyIngressRuleArgs(
                    from_=[
                        networking.NetworkPolicyPeerArgs(
                            namespace_selector=namespace_selector(DASK_OPERATOR_NAMESPACE)
                        )
                    ],
                    ports=[
                        networking.NetworkPolicyPortArgs(port=port, protocol="TCP")
                        for port in (DASK_SCHEDULER_PORT, DASK_DASHBOARD_PORT)
                    ],
                )
            ],
        ),
        opts=opts,
    )


def _scheduler_selector(context: BrandWorkloadContext) -> dict[str, str]:
    return {"dask.org/cluster-name": context.names.dask_cluster, "dask.org/component": "scheduler"}
