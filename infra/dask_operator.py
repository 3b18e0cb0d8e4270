"""The Dask Kubernetes operator, so brand training jobs with ``workers > 0`` run on a DaskCluster.

Installed once per cluster from Dask's Helm repository, pinned to a chart version
from stack config. The operator pod gets requests and limits and the restricted
pod security its chart allows; it watches every namespace because brand
namespaces come and go with brand files.

The operator pod can only run on the user node pool (the system pool is tainted
``CriticalAddonsOnly``), so the release waits for that pool, and its timeout allows
for the pool scaling its first node.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

NAMESPACE = "dask-operator"
CHART = "dask-kubernetes-operator"
REPOSITORY = "https://helm.dask.org"
# Seconds Helm waits for the release (default 300): a new user pool node can take most of it.
RELEASE_TIMEOUT = 900


@dataclass(frozen=True)
class DaskOperatorArgs:
    """Inputs of ``DaskOperator``."""

    chart_version: str
    provider: k8s.Provider
    node_pool: pulumi.Resource
    """The user pool the operator pod is scheduled on."""


class DaskOperator(pulumi.ComponentResource):
    """A namespace and a Helm release of the dask-kubernetes operator."""

    release: k8s.helm.v3.Release
    """Installs the DaskCluster CRD: every DaskCluster depends on it."""

    def __init__(
        self, name: str, args: DaskOperatorArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:dask:DaskOperator", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAMESPACE,
                labels={
                    "app.kubernetes.io/part-of": "recplat",
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=CHART,
            chart=CHART,
            version=args.chart_version,
            namespace=namespace.metadata.name,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=REPOSITORY),
            atomic=True,
            cleanup_on_fail=True,
            timeout=RELEASE_TIMEOUT,
            values={
                "podSecurityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                "securityContext": {
                    "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": True,
                    "runAsUser": 1000,
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                # kopf writes nothing but its own temp files; an emptyDir keeps the root read-only.
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - emptyDir
                "resources": {
                    "requests": {"cpu": "100m", "memory": "256Mi"},
                    "limits": {"cpu": "500m", "memory": "512Mi"},
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=[args.node_pool]
            ),
        )
        self.register_outputs({"namespace": NAMESPACE})
