"""A brand's MLflow access: the admin reserves its names and grants them before it runs.

MLflow's basic-auth app lets any signed-in user create any experiment or registered model
and makes the creator its manager, so whoever creates ``<brand>-ranker`` first owns it.
Per brand, a Job in the MLflow namespace runs ``infra/mlflow_access_job.py`` as the MLflow
admin (see its docstring for what it does and refuses), from the MLflow server's image, which
ships it at ``ACCESS_JOB_PATH``. The brand's service and training
depend on this component, so no brand workload starts before its names are reserved for it
and its grants are exactly its own; a name somebody else took fails the Job, and so the
``pulumi up`` of that brand, with a message saying what to check.

The Job reads the admin password and the brand's two MLflow passwords (writer for
training, reader for serving) through a SecretProviderClass as files, never as env values.
Its name carries a hash of the brand's password secret versions, so a rotation is a new Job
that Kubernetes runs again (a finished Job's pod template cannot change).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.brand_names import BrandNames
from infra.brand_pods import (
    container_security_context,
    pod_security_context,
    secret_provider_class,
)
from infra.mlflow_server import ACCESS_JOB_LABELS, ADMIN_PASSWORD_SECRET, tracking_uri
from infra.mlflow_server_pod import NAMESPACE, PORT, SERVER_LABELS, SERVICE_ACCOUNT
from infra.network_rules import dns_egress_rule

meta, core, batch, networking = k8s.meta.v1, k8s.core.v1, k8s.batch.v1, k8s.networking.v1

ACCESS_JOB_PATH = "/opt/recplat/mlflow_access_job.py"
"""Where the MLflow image has ``infra/mlflow_access_job.py``, run with the image's python3."""
SECRETS_DIR = "/mnt/secrets"
# The job reads it under this name (its own ADMIN_PASSWORD_FILE; not imported: importing the job
# would load MLflow's server into the Pulumi program).
ADMIN_PASSWORD_FILE = "admin-password"  # noqa: S105 - a file name, not a secret
BACKOFF_LIMIT = 3
ACTIVE_DEADLINE_SECONDS = 900


def job_name(names: BrandNames, password_versions: Sequence[str] = ()) -> str:
    """``mlflow-access-<brand>-<hash>`` of the password versions: a rotation runs it again."""
    versions = "\n".join(sorted(password_versions))
    digest = hashlib.sha256(f"{names.brand}\n{versions}".encode()).hexdigest()[:10]
    return f"{names.mlflow_access_job}-{digest}"


def create_access_job_network_policy(
    name: str, opts: pulumi.ResourceOptions
) -> networking.NetworkPolicy:
    """Access Jobs talk to DNS and the tracking server only, and nothing talks to them."""
    return networking.NetworkPolicy(
        name,
        metadata=meta.ObjectMetaArgs(
            name="mlflow-access", namespace=NAMESPACE, labels=ACCESS_JOB_LABELS
        ),
        spec=networking.NetworkPolicySpecArgs(
            pod_selector=meta.LabelSelectorArgs(match_labels=ACCESS_JOB_LABELS),
            policy_types=["Ingress", "Egress"],
            egress=[
                dns_egress_rule(),
                networking.NetworkPolicyEgressRuleArgs(
                    to=[
                        networking.NetworkPolicyPeerArgs(
                            pod_selector=meta.LabelSelectorArgs(match_labels=SERVER_LABELS)
                        )
                    ],
                    ports=[networking.NetworkPolicyPortArgs(port=PORT, protocol="TCP")],
                ),
            ],
        ),
        opts=opts,
    )


def access_job_container(image: str, brand: str) -> core.ContainerArgs:
    """Runs the job file the MLflow image ships; the secrets are files, never arguments."""
    return core.ContainerArgs(
        name="reserve",
        image=image,
        image_pull_policy="Always",
        command=["python3", ACCESS_JOB_PATH, tracking_uri(), SECRETS_DIR, brand],
        # MLflow's auth client lives in its server package: importing it loads the server
        # (259 MB RSS measured, and seconds of CPU; the image has its bytecode).
        resources=core.ResourceRequirementsArgs(
            requests={"cpu": "100m", "memory": "512Mi"},
            limits={"cpu": "1", "memory": "512Mi"},
        ),
        security_context=container_security_context(),
        volume_mounts=[
            core.VolumeMountArgs(name="secrets", mount_path=SECRETS_DIR, read_only=True)
        ],
    )


def access_job_pod_spec(container: core.ContainerArgs, provider_class: str) -> core.PodSpecArgs:
    """One try per pod, as the server's account, with the brand's secrets mounted."""
    return core.PodSpecArgs(
        # The server's account: its federated identity is what the CSI driver signs in as to
        # read the mounted secrets.
        service_account_name=SERVICE_ACCOUNT,
        automount_service_account_token=False,
        restart_policy="Never",
        security_context=pod_security_context(),
        containers=[container],
        volumes=[
            core.VolumeArgs(
                name="secrets",
                csi=core.CSIVolumeSourceArgs(
                    driver="secrets-store.csi.k8s.io",
                    read_only=True,
                    volume_attributes={"secretProviderClass": provider_class},
                ),
            )
        ],
    )


@dataclass(frozen=True)
class MlflowAccessArgs:
    """Inputs of ``MlflowAccess``: the brand and how the Job reaches MLflow and its secrets."""

    names: BrandNames
    password_secret_names: tuple[pulumi.Input[str], pulumi.Input[str]]
    """The Key Vault names of the brand's writer and reader passwords, in that order."""
    image: str
    """The MLflow server's image (it has python3)."""
    identity_client_id: pulumi.Input[str]
    """The MLflow server's identity: it reads the admin and the brand's password secrets."""
    key_vault_name: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    provider: k8s.Provider
    password_versions: Sequence[pulumi.Input[str]] = ()
    """The brand's two MLflow password secret URIs with their versions."""
    ready: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """What must exist before the Job runs: the server, its grants, the Jobs' NetworkPolicy."""


class MlflowAccess(pulumi.ComponentResource):
    """The brand's SecretProviderClass in the MLflow namespace and the Job that reserves and
    grants its MLflow names. Pulumi waits for the Job to complete."""

    def __init__(
        self, name: str, args: MlflowAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:mlflow:MlflowAccess", name, None, opts)
        names = args.names
        writer_password, reader_password = args.password_secret_names
        in_cluster = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(args.ready)
        )
        provider_class = secret_provider_class(
            f"{name}-secret-provider",
            meta.ObjectMetaArgs(
                name=names.mlflow_access_job, namespace=NAMESPACE, labels=ACCESS_JOB_LABELS
            ),
            client_id=args.identity_client_id,
            key_vault_name=args.key_vault_name,
            tenant_id=args.tenant_id,
            secrets=[
                (ADMIN_PASSWORD_SECRET, ADMIN_PASSWORD_FILE),
                (writer_password, names.mlflow_user),
                (reader_password, names.mlflow_reader),
            ],
            opts=in_cluster,
        )
        container = access_job_container(args.image, names.brand)
        name_of_job = pulumi.Output.all(*args.password_versions).apply(
            lambda versions: job_name(names, [str(v) for v in versions])
        )
        self.job = batch.Job(
            f"{name}-job",
            metadata=meta.ObjectMetaArgs(
                name=name_of_job, namespace=NAMESPACE, labels=ACCESS_JOB_LABELS
            ),
            spec=batch.JobSpecArgs(
                backoff_limit=BACKOFF_LIMIT,
                active_deadline_seconds=ACTIVE_DEADLINE_SECONDS,
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels=ACCESS_JOB_LABELS),
                    spec=access_job_pod_spec(container, names.mlflow_access_job),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(
                in_cluster, pulumi.ResourceOptions(depends_on=[provider_class])
            ),
        )
        self.register_outputs({"jobName": name_of_job})
