"""How every brand pod runs: its security context, its environment contract, its image.

The ranking service, the training job and the Dask pods share these so the pod
security (restricted profile) and the environment variables of docs/architecture.md
("Contracts") are
written once and cannot drift between workloads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from ranking_features.brand import Brand
from ranking_features.mlflow_names import registered_model_name

from infra.brand_names import BrandNames, BrandSecret

core = k8s.core.v1

RUN_AS_USER = 10001
"""A high, non-root UID: never collides with a host user (checkov CKV_K8S_40)."""
TMP_MOUNT = "/tmp"  # noqa: S108 - an emptyDir, private to the pod.
CPU_LIMIT_FACTOR = 2
SECRETS_VOLUME = "brand-secrets"
SECRETS_MOUNT = "/mnt/secrets/brand"
"""Where the brand's SecretProviderClass puts its Key Vault secrets, one file each."""
API_KEY_OBJECT = "api-key"
MLFLOW_PASSWORD_OBJECT = "mlflow-password"  # noqa: S105 - a file name, not a secret


@dataclass(frozen=True)
class BrandWorkloadContext:
    """Values every workload of one brand needs, resolved once per BrandStack."""

    brand: Brand
    names: BrandNames
    secret_names: Mapping[BrandSecret, pulumi.Input[str]]
    """The Key Vault names of the brand's secrets (``BrandNames.secret_name``)."""
    environment: str
    labels: dict[str, str]
    tracking_uri: pulumi.Input[str]
    lake_uri: pulumi.Input[str]
    service_identity_client_id: pulumi.Input[str]
    training_identity_client_id: pulumi.Input[str]
    acr_login_server: pulumi.Input[str]
    k8s_opts: pulumi.ResourceOptions

    def metadata(
        self, name: str, component: str | None = None, **extra_labels: str
    ) -> k8s.meta.v1.ObjectMetaArgs:
        labels = {**self.labels, **self.component_labels(component), **extra_labels}
        return k8s.meta.v1.ObjectMetaArgs(name=name, namespace=self.names.namespace, labels=labels)

    def component_labels(self, component: str | None) -> dict[str, str]:
        if component is None:
            return {}
        return {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": self.names.brand}

    def image(self, image: str) -> pulumi.Output[str]:
        """A full image reference: as configured when it names a registry, else in the env's ACR."""
        return pulumi.Output.from_input(self.acr_login_server).apply(
            lambda server: image if "/" in image else f"{server}/{image}"
        )

    def common_env(self) -> list[core.EnvVarArgs]:
        """The environment contract (docs/architecture.md, "Contracts") of service and training."""
        values: dict[str, pulumi.Input[str]] = {
            "RECPLAT_BRAND": self.brand.name,
            "RECPLAT_ENV": self.environment,
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "RECPLAT_MODEL_NAME": registered_model_name(self.brand.name),
            "RECPLAT_LAKE_URI": self.lake_uri,
            "TMPDIR": TMP_MOUNT,
        }
        return [core.EnvVarArgs(name=name, value=value) for name, value in values.items()]

    def mlflow_auth_env(self, user: str) -> list[core.EnvVarArgs]:
        """Who the workload is to MLflow: a user name, and the file its password is mounted at.

        The service signs in as the brand's reader, training as its writer
        (``BrandNames.mlflow_reader`` / ``mlflow_user``). The password is never an env value:
        the workload reads the file at start-up.
        """
        return [
            core.EnvVarArgs(name="RECPLAT_MLFLOW_USERNAME", value=user),
            core.EnvVarArgs(
                name="RECPLAT_MLFLOW_PASSWORD_FILE",
                value=f"{SECRETS_MOUNT}/{MLFLOW_PASSWORD_OBJECT}",
            ),
        ]

    def secrets_volume(self, provider_class: str) -> core.VolumeArgs:
        """Key Vault secrets through the Secrets Store CSI driver (read-only files), from the
        workload's own SecretProviderClass: the service's and training's hold different ones."""
        return core.VolumeArgs(
            name=SECRETS_VOLUME,
            csi=core.CSIVolumeSourceArgs(
                driver="secrets-store.csi.k8s.io",
                read_only=True,
                volume_attributes={"secretProviderClass": provider_class},
            ),
        )


def secret_objects_parameter(*secrets: tuple[pulumi.Input[str], str]) -> pulumi.Output[str]:
    """The CSI driver's ``objects`` parameter: each Key Vault secret as a file named by alias.

    Brand secret names carry a generated suffix, so they are known only once it is.
    """
    aliases = [alias for _, alias in secrets]

    def objects(names: list[str]) -> str:
        return "array:\n" + "".join(
            f"  - |\n    objectName: {name}\n    objectType: secret\n    objectAlias: {alias}\n"
            for name, alias in zip(names, aliases, strict=True)
        )

    return pulumi.Output.all(*(secret for secret, _ in secrets)).apply(objects)


def secret_provider_class(
    resource_name: str,
    metadata: k8s.meta.v1.ObjectMetaArgs,
    *,
    client_id: pulumi.Input[str],
    key_vault_name: pulumi.Input[str],
    tenant_id: pulumi.Input[str],
    secrets: Sequence[tuple[pulumi.Input[str], str]],
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    """A SecretProviderClass that mounts ``secrets`` (Key Vault name, file alias) as files,
    read with the workload identity ``client_id``."""
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version="secrets-store.csi.x-k8s.io/v1",
        kind="SecretProviderClass",
        metadata=metadata,
        # No secretObjects: nothing is synced into a Kubernetes Secret, so no secret can
        # leak through an env var or a `kubectl get secret`.
        spec={
            "provider": "azure",
            "parameters": {
                "usePodIdentity": "false",
                "clientID": client_id,
                "keyvaultName": key_vault_name,
                "tenantId": tenant_id,
                "objects": secret_objects_parameter(*secrets),
            },
        },
        opts=opts,
    )


def secrets_mount() -> core.VolumeMountArgs:
    return core.VolumeMountArgs(name=SECRETS_VOLUME, mount_path=SECRETS_MOUNT, read_only=True)


def pod_security_context() -> core.PodSecurityContextArgs:
    return core.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        run_as_group=RUN_AS_USER,
        fs_group=RUN_AS_USER,
        seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security_context() -> core.SecurityContextArgs:
    return core.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        run_as_group=RUN_AS_USER,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        privileged=False,
        capabilities=core.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"),
    )


def resources(cpu: str, memory: str) -> core.ResourceRequirementsArgs:
    """Requests from the brand file; memory limit equal to it (no overcommit), CPU room to burst."""
    milli = int(cpu[:-1]) if cpu.endswith("m") else round(float(cpu) * 1000)
    return core.ResourceRequirementsArgs(
        requests={"cpu": cpu, "memory": memory},
        limits={"cpu": f"{milli * CPU_LIMIT_FACTOR}m", "memory": memory},
    )


def scratch_volume(name: str, size: str = "256Mi") -> core.VolumeArgs:
    """A pod-private, size-limited writable directory; the root filesystem stays read-only."""
    return core.VolumeArgs(name=name, empty_dir=core.EmptyDirVolumeSourceArgs(size_limit=size))


def workload_identity_labels() -> dict[str, str]:
    """The label that makes the workload identity webhook inject the federated token."""
    return {"azure.workload.identity/use": "true"}
