"""The brands' MLflow users: one basic-auth user per brand, set by a Job in the MLflow namespace.

Each BrandStack stores a random password for its user (``brand-<name>``) in Key Vault
and mounts it into its service and training pods. This module makes MLflow know those
users: a Job, run from the MLflow image, reads the admin password and every brand's
password through a SecretProviderClass in the MLflow namespace (as files, never env
values) and, through MLflow's REST API, creates each user or updates its password.
It is idempotent, so a re-run changes nothing but rotated passwords.

Least privilege per brand comes from MLflow itself: the server's
``default_permission`` is ``NO_PERMISSIONS``, and MLflow gives the creator of an
experiment or registered model ``MANAGE`` on it. So the brand user that creates
``recplat/<brand>`` and ``<brand>-ranker`` owns them, and every other brand's user can
neither read nor write them. No user here is an admin.

The Job's name carries a hash of the user list and of the password secrets' versions, so
adding or removing a brand, or rotating a password (a new Key Vault secret version), makes a
new Job that Kubernetes runs again (a finished Job's pod template cannot change).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.brand_names import BrandNames
from infra.mlflow_server import (
    ADMIN_PASSWORD_SECRET,
    NAMESPACE,
    PORT,
    SERVER_LABELS,
    SERVICE_ACCOUNT,
    USERS_JOB_LABELS,
    tracking_uri,
)
from infra.network_rules import dns_egress_rule

meta, core, batch, networking = k8s.meta.v1, k8s.core.v1, k8s.batch.v1, k8s.networking.v1

SECRET_PROVIDER_CLASS = "mlflow-users"  # noqa: S105 - a name, not a secret
SECRETS_DIR = "/mnt/secrets"
ADMIN_PASSWORD_FILE = "admin-password"  # noqa: S105 - a file name, not a secret
RUN_AS_USER = 10001
BACKOFF_LIMIT = 6
ACTIVE_DEADLINE_SECONDS = 900

# Runs with the image's python3 and the standard library only. The server may still be
# rolling out, so it waits for /health first (bounded). Passwords never reach a log.
SET_USERS_SCRIPT = """\
import base64, json, pathlib, sys, time, urllib.error, urllib.parse, urllib.request

url, secrets, users = sys.argv[1].rstrip("/"), pathlib.Path(sys.argv[2]), sys.argv[3:]
admin = (secrets / "admin-password").read_text().strip()
auth = "Basic " + base64.b64encode(("admin:" + admin).encode()).decode()


def call(method, path, body=None):
    request = urllib.request.Request(
        url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": auth, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


deadline = time.monotonic() + 300
while True:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5):
            break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("mlflow-users: " + url + "/health did not answer within 300 s")
        time.sleep(5)

failed = []
for user in users:
    password = (secrets / user).read_text().strip()
    found = call("GET", "/api/2.0/mlflow/users/get?" + urllib.parse.urlencode({"username": user}))
    if found == 200:
        action, status = "updated", call(
            "PATCH", "/api/2.0/mlflow/users/update-password",
            {"username": user, "password": password},
        )
    elif found == 404:
        action, status = "created", call(
            "POST", "/api/2.0/mlflow/users/create", {"username": user, "password": password}
        )
    else:
        action, status = "looked up", found
    if status == 200:
        print("mlflow-users: " + action + " " + user, flush=True)
    else:
        failed.append(user + " (" + action + ": HTTP " + str(status) + ")")
if failed:
    sys.exit("mlflow-users: failed for " + ", ".join(failed))
"""


@dataclass(frozen=True)
class MlflowUsersArgs:
    """Inputs of ``MlflowUsers``: the brands of the stack and how to reach their secrets."""

    brands: Sequence[BrandNames]
    image: str
    """The MLflow server's image (it has python3)."""
    identity_client_id: pulumi.Input[str]
    """The MLflow server's identity: it reads the admin and the brands' password secrets."""
    key_vault_name: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    provider: k8s.Provider
    password_versions: Sequence[pulumi.Input[str]] = ()
    """Each brand's password secret URI with its version: a rotation re-runs the Job."""


def job_name(brands: Sequence[BrandNames], password_versions: Sequence[str] = ()) -> str:
    """``mlflow-users-<hash>`` of the user list and the password versions: a new brand set
    or a rotated password is a new Job, run again."""
    users = "\n".join(sorted(names.mlflow_user for names in brands))
    versions = "\n".join(sorted(password_versions))
    digest = hashlib.sha256(f"{users}\n\n{versions}".encode()).hexdigest()[:10]
    return f"mlflow-users-{digest}"


class MlflowUsers(pulumi.ComponentResource):
    """The SecretProviderClass with every brand's MLflow password, and the Job that sets them."""

    def __init__(
        self, name: str, args: MlflowUsersArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:mlflow:MlflowUsers", name, None, opts)
        in_cluster = pulumi.ResourceOptions(parent=self, provider=args.provider)
        users = sorted(args.brands, key=lambda names: names.mlflow_user)
        objects = [(ADMIN_PASSWORD_SECRET, ADMIN_PASSWORD_FILE)] + [
            (names.mlflow_password_secret, names.mlflow_user) for names in users
        ]
        provider_class = k8s.apiextensions.CustomResource(
            f"{name}-secret-provider",
            api_version="secrets-store.csi.x-k8s.io/v1",
            kind="SecretProviderClass",
            metadata=meta.ObjectMetaArgs(
                name=SECRET_PROVIDER_CLASS, namespace=NAMESPACE, labels=USERS_JOB_LABELS
            ),
            # No secretObjects: nothing is synced into a Kubernetes Secret.
            spec={
                "provider": "azure",
                "parameters": {
                    "usePodIdentity": "false",
                    "clientID": args.identity_client_id,
                    "keyvaultName": args.key_vault_name,
                    "tenantId": args.tenant_id,
                    "objects": "array:\n"
                    + "".join(
                        f"  - |\n    objectName: {secret}\n    objectType: secret\n"
                        f"    objectAlias: {alias}\n"
                        for secret, alias in objects
                    ),
                },
            },
            opts=in_cluster,
        )
        container = core.ContainerArgs(
            name="set-users",
            image=args.image,
            image_pull_policy="Always",
            command=[
                "python3",
                "-c",
                SET_USERS_SCRIPT,
                tracking_uri(),
                SECRETS_DIR,
                *(names.mlflow_user for names in users),
            ],
            resources=core.ResourceRequirementsArgs(
                requests={"cpu": "50m", "memory": "64Mi"},
                limits={"cpu": "200m", "memory": "128Mi"},
            ),
            security_context=core.SecurityContextArgs(
                run_as_non_root=True,
                run_as_user=RUN_AS_USER,
                run_as_group=RUN_AS_USER,
                read_only_root_filesystem=True,
                allow_privilege_escalation=False,
                privileged=False,
                capabilities=core.CapabilitiesArgs(drop=["ALL"]),
                seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"),
            ),
            volume_mounts=[
                core.VolumeMountArgs(name="secrets", mount_path=SECRETS_DIR, read_only=True)
            ],
        )
        # Nothing talks to the job; it talks to DNS and to the tracking server only.
        network_policy = networking.NetworkPolicy(
            f"{name}-network-policy",
            metadata=meta.ObjectMetaArgs(
                name="mlflow-users", namespace=NAMESPACE, labels=USERS_JOB_LABELS
            ),
            spec=networking.NetworkPolicySpecArgs(
                pod_selector=meta.LabelSelectorArgs(match_labels=USERS_JOB_LABELS),
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
            opts=in_cluster,
        )
        name_of_job = pulumi.Output.all(*args.password_versions).apply(
            lambda versions: job_name(users, [str(v) for v in versions])
        )
        self.job = batch.Job(
            f"{name}-job",
            metadata=meta.ObjectMetaArgs(
                name=name_of_job, namespace=NAMESPACE, labels=USERS_JOB_LABELS
            ),
            spec=batch.JobSpecArgs(
                backoff_limit=BACKOFF_LIMIT,
                active_deadline_seconds=ACTIVE_DEADLINE_SECONDS,
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels=USERS_JOB_LABELS),
                    spec=core.PodSpecArgs(
                        # The server's account: its federated identity is what the CSI
                        # driver signs in as to read the mounted secrets.
                        service_account_name=SERVICE_ACCOUNT,
                        automount_service_account_token=False,
                        restart_policy="Never",
                        security_context=core.PodSecurityContextArgs(
                            run_as_non_root=True,
                            run_as_user=RUN_AS_USER,
                            run_as_group=RUN_AS_USER,
                            fs_group=RUN_AS_USER,
                            seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"),
                        ),
                        containers=[container],
                        volumes=[
                            core.VolumeArgs(
                                name="secrets",
                                csi=core.CSIVolumeSourceArgs(
                                    driver="secrets-store.csi.k8s.io",
                                    read_only=True,
                                    volume_attributes={
                                        "secretProviderClass": SECRET_PROVIDER_CLASS
                                    },
                                ),
                            )
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[provider_class, network_policy],
            ),
        )
        self.register_outputs({"jobName": name_of_job})
