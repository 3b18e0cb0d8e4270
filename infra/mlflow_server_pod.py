"""The MLflow tracking server's pods: the container that runs the image's start-up script.

The MLflow image (``images/mlflow/Dockerfile``) ships ``images/mlflow/start-server.sh`` as
``START_SCRIPT``. It writes MLflow's basic-auth config from the Key Vault secrets the CSI
driver mounts at ``SECRETS_DIR`` into ``AUTH_CONFIG`` (the pod's private emptyDir), then
execs ``mlflow server --app-name basic-auth`` with the options this module passes as the
container's args, so the server is PID 1. The secrets are never an argument or an
environment value of the pod spec.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.brand_pods import container_security_context, pod_security_context
from infra.config import MlflowConfig

NAMESPACE = "mlflow"
SERVICE_ACCOUNT = "mlflow-server"
PORT = 5000
SERVER_LABELS = {"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/part-of": "recplat"}
"""Pods of the tracking server itself."""
START_SCRIPT = "/opt/recplat/start-server.sh"
"""Where the MLflow image has ``images/mlflow/start-server.sh``."""
SECRETS_DIR = "/mnt/secrets"
# Written at start into the pod's own emptyDir, readable by the server user only.
AUTH_CONFIG = "/tmp/mlflow/basic_auth.ini"  # noqa: S108 - a private emptyDir

meta = k8s.meta.v1
core = k8s.core.v1


def server_arguments(artifacts_destination: str, workers: int) -> list[str]:
    """The start script's arguments: the secrets directory, then ``mlflow server``'s options
    (the script adds ``--app-name basic-auth`` and the backend store it reads from a secret)."""
    allowed_hosts = ",".join(
        f"{host}:{PORT},{host}"
        for host in (
            f"mlflow.{NAMESPACE}.svc.cluster.local",
            f"mlflow.{NAMESPACE}.svc",
            f"mlflow.{NAMESPACE}",
            "localhost",
        )
    )
    return [
        SECRETS_DIR,
        *("--host", "0.0.0.0", "--port", str(PORT), "--workers", str(workers)),  # noqa: S104
        *("--serve-artifacts", "--artifacts-destination", artifacts_destination),
        *("--allowed-hosts", allowed_hosts),
    ]


def server_container(
    image: str, config: MlflowConfig, artifacts_destination: str
) -> core.ContainerArgs:
    """The server's container: the image's start script, probes on MLflow's ``/health``."""
    probe_get = core.HTTPGetActionArgs(path="/health", port="http")
    return core.ContainerArgs(
        name="mlflow",
        image=image,
        image_pull_policy="IfNotPresent",
        command=[START_SCRIPT],
        args=server_arguments(artifacts_destination, config.workers),
        ports=[core.ContainerPortArgs(name="http", container_port=PORT)],
        env=[core.EnvVarArgs(name="MLFLOW_AUTH_CONFIG_PATH", value=AUTH_CONFIG)],
        resources=core.ResourceRequirementsArgs(
            requests={"cpu": config.cpu, "memory": config.memory},
            limits={"cpu": config.cpu, "memory": config.memory},
        ),
        startup_probe=core.ProbeArgs(
            http_get=probe_get, period_seconds=5, failure_threshold=60, timeout_seconds=3
        ),
        readiness_probe=core.ProbeArgs(http_get=probe_get, period_seconds=10, timeout_seconds=3),
        liveness_probe=core.ProbeArgs(
            http_get=probe_get, period_seconds=20, timeout_seconds=5, failure_threshold=3
        ),
        security_context=container_security_context(),
        volume_mounts=[
            core.VolumeMountArgs(name="secrets", mount_path=SECRETS_DIR, read_only=True),
            core.VolumeMountArgs(name="tmp", mount_path="/tmp"),  # noqa: S108 - an emptyDir
        ],
    )


def server_pod_spec(container: core.ContainerArgs) -> core.PodSpecArgs:
    """Spread over zones, as the server's account, with the secrets and a private /tmp."""
    return core.PodSpecArgs(
        service_account_name=SERVICE_ACCOUNT,
        automount_service_account_token=False,
        security_context=pod_security_context(),
        topology_spread_constraints=[
            core.TopologySpreadConstraintArgs(
                max_skew=1,
                topology_key="topology.kubernetes.io/zone",
                when_unsatisfiable="ScheduleAnyway",
                label_selector=meta.LabelSelectorArgs(match_labels=SERVER_LABELS),
            )
        ],
        containers=[container],
        volumes=[
            core.VolumeArgs(
                name="secrets",
                csi=core.CSIVolumeSourceArgs(
                    driver="secrets-store.csi.k8s.io",
                    read_only=True,
                    volume_attributes={"secretProviderClass": "mlflow-secrets"},
                ),
            ),
            core.VolumeArgs(
                name="tmp", empty_dir=core.EmptyDirVolumeSourceArgs(size_limit="256Mi")
            ),
        ],
    )


def create_server_deployment(
    name: str,
    container: core.ContainerArgs,
    replicas: int,
    opts: pulumi.ResourceOptions,
) -> k8s.apps.v1.Deployment:
    """The server's Deployment: one pod more during a rollout, never one fewer."""
    pod_labels = {**SERVER_LABELS, "azure.workload.identity/use": "true"}
    return k8s.apps.v1.Deployment(
        name,
        metadata=meta.ObjectMetaArgs(name="mlflow", namespace=NAMESPACE, labels=SERVER_LABELS),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            # The HPA owns the replica count from here on; this is only the first rollout.
            replicas=replicas,
            selector=meta.LabelSelectorArgs(match_labels=SERVER_LABELS),
            strategy=k8s.apps.v1.DeploymentStrategyArgs(
                type="RollingUpdate",
                rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                    max_unavailable=0, max_surge=1
                ),
            ),
            template=core.PodTemplateSpecArgs(
                metadata=meta.ObjectMetaArgs(labels=pod_labels),
                spec=server_pod_spec(container),
            ),
        ),
        opts=opts,
    )
