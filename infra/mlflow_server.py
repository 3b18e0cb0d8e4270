"""The MLflow tracking server on AKS: the environment's single model registry.

Authentication: MLflow's own ``basic-auth`` app. It runs inside the server (no
extra hop), stores users in the same PostgreSQL database, and gives per-experiment
permissions, so each brand's user can be limited to ``recplat/<brand>``. An
oauth2-proxy sidecar would only authenticate browsers: MLflow clients in jobs and
services cannot refresh its cookies or short-lived tokens. New users get no
permissions by default.

Secrets (backend-store URI, admin password, Flask session key) come from Key Vault
through the CSI driver as files and are read at start by the image's start script
(``infra.mlflow_server_pod``); none is a Kubernetes Secret or an environment variable in
the manifest. Artifacts go to ``wasbs://mlflow@...``
under workload identity, whose identity may write to the ``mlflow`` container only.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi_azure_native import managedidentity

from infra import azure_roles
from infra.config import MlflowConfig
from infra.database import BACKEND_STORE_URI_SECRET
from infra.environment_names import EnvironmentNames
from infra.mlflow_server_pod import (
    NAMESPACE,
    PORT,
    SERVER_LABELS,
    SERVICE_ACCOUNT,
    create_server_deployment,
    server_container,
)
from infra.network_rules import dns_egress_rule
from infra.vault import Vault, store_secret

ADMIN_PASSWORD_SECRET = "mlflow-admin-password"  # noqa: S105 - a name, not a secret
FLASK_KEY_SECRET = "mlflow-flask-secret-key"  # noqa: S105 - a name, not a secret
_WORKLOAD_IDENTITY_AUDIENCE = "api://AzureADTokenExchange"
_LABELS = SERVER_LABELS
ACCESS_JOB_LABELS = {
    "app.kubernetes.io/name": "mlflow-access",
    "app.kubernetes.io/part-of": "recplat",
}
"""Pods of the Jobs that reserve each brand's MLflow names and users (infra/mlflow_access.py)."""

meta = k8s.meta.v1
core = k8s.core.v1


def tracking_uri() -> str:
    """The in-cluster URL of the tracking server; it has no route from outside the cluster."""
    return f"http://mlflow.{NAMESPACE}.svc.cluster.local:{PORT}"


@dataclass(frozen=True)
class MlflowServerArgs:
    """Inputs of ``MlflowServer``."""

    names: EnvironmentNames
    config: MlflowConfig
    image: str
    subscription_id: str
    tenant_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    location: str
    oidc_issuer_url: pulumi.Input[str]
    storage_account_name: str
    mlflow_container_id: pulumi.Input[str]
    vault: Vault
    high_availability: bool
    provider: k8s.Provider
    tags: dict[str, str]


class MlflowServer(pulumi.ComponentResource):
    """MLflow in its own namespace, with workload identity, auth, probes and a ClusterIP Service."""

    tracking_uri: str
    identity_principal_id: pulumi.Output[str]
    identity_client_id: pulumi.Output[str]
    image: str

    def __init__(
        self, name: str, args: MlflowServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:mlflow:MlflowServer", name, None, opts)
        identity = self._identity(name, args)
        secret_ids = self._secrets(name, args, identity)
        namespace = core.Namespace(
            f"{name}-namespace",
            metadata=meta.ObjectMetaArgs(
                name=NAMESPACE,
                labels={
                    **_LABELS,
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        ns_opts = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=[namespace]
        )
        needs = self._pod_identity(name, args, identity, secret_ids, ns_opts)
        artifacts = f"wasbs://mlflow@{args.storage_account_name}.blob.core.windows.net/"
        create_server_deployment(
            f"{name}-deployment",
            server_container(args.image, args.config, artifacts),
            args.config.replicas,
            pulumi.ResourceOptions.merge(ns_opts, pulumi.ResourceOptions(depends_on=needs)),
        )
        core.Service(
            f"{name}-service",
            metadata=meta.ObjectMetaArgs(name="mlflow", namespace=NAMESPACE, labels=_LABELS),
            spec=core.ServiceSpecArgs(
                type="ClusterIP",
                selector=_LABELS,
                ports=[core.ServicePortArgs(name="http", port=PORT, target_port="http")],
            ),
            opts=ns_opts,
        )
        self._network_policy(name, ns_opts)
        self._scaling(name, args, ns_opts)

        self.tracking_uri = tracking_uri()
        self.identity_principal_id = identity.principal_id
        self.identity_client_id = identity.client_id
        self.image = args.image
        self.register_outputs(
            {"trackingUri": self.tracking_uri, "identityPrincipalId": self.identity_principal_id}
        )

    def _identity(self, name: str, args: MlflowServerArgs) -> managedidentity.UserAssignedIdentity:
        """The server's workload identity: it may write the ``mlflow`` artifact container."""
        azure = pulumi.ResourceOptions(parent=self)
        identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_name_=f"id-recplat-{args.names.stack}-mlflow",
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=args.tags,
            opts=azure,
        )
        managedidentity.FederatedIdentityCredential(
            f"{name}-federation",
            federated_identity_credential_resource_name="mlflow-server",
            resource_name_=identity.name,
            resource_group_name=args.resource_group_name,
            issuer=args.oidc_issuer_url,
            subject=f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}",
            audiences=[_WORKLOAD_IDENTITY_AUDIENCE],
            opts=azure,
        )
        azure_roles.assign_role(
            f"{name}-artifacts-writer",
            subscription_id=args.subscription_id,
            role=azure_roles.STORAGE_BLOB_DATA_CONTRIBUTOR,
            principal_id=identity.principal_id,
            principal_type="ServicePrincipal",
            scope=args.mlflow_container_id,
            parent=self,
        )
        return identity

    def _secrets(
        self,
        name: str,
        args: MlflowServerArgs,
        identity: managedidentity.UserAssignedIdentity,
    ) -> dict[str, pulumi.Input[str]]:
        """The admin password and Flask key in Key Vault; the identity reads the three the
        server mounts. Returns their Key Vault ids by secret name."""
        azure = pulumi.ResourceOptions(parent=self)
        # The backend-store URI secret is the Database's; MlflowServer depends on it.
        secret_ids: dict[str, pulumi.Input[str]] = {
            BACKEND_STORE_URI_SECRET: pulumi.Output.concat(
                args.vault.vault_id, "/secrets/", BACKEND_STORE_URI_SECRET
            )
        }
        for secret_name, length in ((ADMIN_PASSWORD_SECRET, 32), (FLASK_KEY_SECRET, 64)):
            value = random.RandomPassword(
                f"{name}-{secret_name}", length=length, special=False, opts=azure
            )
            secret = store_secret(
                f"{name}-{secret_name}-secret",
                vault=args.vault,
                secret_name=secret_name,
                value=value.result,
                tags=args.tags,
                parent=self,
            )
            secret_ids[secret_name] = secret.id
        # Read access to exactly the three secrets the server mounts, not the whole vault.
        for secret_name, secret_id in secret_ids.items():
            azure_roles.assign_role(
                f"{name}-reads-{secret_name}",
                subscription_id=args.subscription_id,
                role=azure_roles.KEY_VAULT_SECRETS_USER,
                principal_id=identity.principal_id,
                principal_type="ServicePrincipal",
                scope=secret_id,
                parent=self,
            )
        return secret_ids

    def _pod_identity(
        self,
        name: str,
        args: MlflowServerArgs,
        identity: managedidentity.UserAssignedIdentity,
        secret_ids: dict[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions,
    ) -> list[pulumi.Resource]:
        """The ServiceAccount the identity federates with, and the SecretProviderClass that
        mounts the server's secrets; the Deployment needs both."""
        service_account = core.ServiceAccount(
            f"{name}-service-account",
            metadata=meta.ObjectMetaArgs(
                name=SERVICE_ACCOUNT,
                namespace=NAMESPACE,
                labels=_LABELS,
                annotations={"azure.workload.identity/client-id": identity.client_id},
            ),
            automount_service_account_token=False,
            opts=opts,
        )
        objects = "array:\n" + "".join(
            f"  - |\n    objectName: {secret}\n    objectType: secret\n" for secret in secret_ids
        )
        provider_class = k8s.apiextensions.CustomResource(
            f"{name}-secret-provider",
            api_version="secrets-store.csi.x-k8s.io/v1",
            kind="SecretProviderClass",
            metadata=meta.ObjectMetaArgs(
                name="mlflow-secrets", namespace=NAMESPACE, labels=_LABELS
            ),
            spec={
                "provider": "azure",
                "parameters": {
                    "clientID": identity.client_id,
                    "keyvaultName": args.vault.vault_name,
                    "tenantId": args.tenant_id,
                    "objects": objects,
                },
            },
            opts=opts,
        )
        return [service_account, provider_class]

    def _scaling(self, name: str, args: MlflowServerArgs, opts: pulumi.ResourceOptions) -> None:
        """CPU-based autoscaling, and (high availability) a PodDisruptionBudget of one."""
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=meta.ObjectMetaArgs(name="mlflow", namespace=NAMESPACE, labels=_LABELS),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name="mlflow"
                ),
                min_replicas=args.config.replicas,
                max_replicas=args.config.max_replicas,
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(
                                type="Utilization", average_utilization=70
                            ),
                        ),
                    )
                ],
            ),
            opts=opts,
        )
        if args.high_availability:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=meta.ObjectMetaArgs(name="mlflow", namespace=NAMESPACE, labels=_LABELS),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    min_available=1, selector=meta.LabelSelectorArgs(match_labels=_LABELS)
                ),
                opts=opts,
            )

    def _network_policy(self, name: str, opts: pulumi.ResourceOptions) -> None:
        """Brand namespaces and the access Jobs in on HTTP; out only DNS, PostgreSQL, HTTPS."""
        networking = k8s.networking.v1
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=meta.ObjectMetaArgs(name="mlflow", namespace=NAMESPACE, labels=_LABELS),
            spec=networking.NetworkPolicySpecArgs(
                pod_selector=meta.LabelSelectorArgs(match_labels=_LABELS),
                policy_types=["Ingress", "Egress"],
                ingress=[
                    networking.NetworkPolicyIngressRuleArgs(
                        from_=[
                            networking.NetworkPolicyPeerArgs(
                                namespace_selector=meta.LabelSelectorArgs(
                                    match_expressions=[
                                        meta.LabelSelectorRequirementArgs(
                                            key="recplat.io/brand", operator="Exists"
                                        )
                                    ]
                                )
                            )
                        ],
                        ports=[networking.NetworkPolicyPortArgs(port=PORT, protocol="TCP")],
                    ),
                    # The access Jobs, from this namespace only, set the brands' users and grants.
                    networking.NetworkPolicyIngressRuleArgs(
                        from_=[
                            networking.NetworkPolicyPeerArgs(
                                pod_selector=meta.LabelSelectorArgs(match_labels=ACCESS_JOB_LABELS)
                            )
                        ],
                        ports=[networking.NetworkPolicyPortArgs(port=PORT, protocol="TCP")],
                    ),
                ],
                egress=[
                    dns_egress_rule(),
                    networking.NetworkPolicyEgressRuleArgs(
                        ports=[
                            networking.NetworkPolicyPortArgs(port=5432, protocol="TCP"),
                            networking.NetworkPolicyPortArgs(port=443, protocol="TCP"),
                        ],
                    ),
                ],
            ),
            opts=opts,
        )
