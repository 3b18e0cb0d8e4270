"""The brand layer planned alone: one `BrandStack` per brand under Pulumi's mock runtime, on a
stand-in `BrandPlatform` of plain values (no environment layer, no cloud). `plan_brands`
returns every resource by logical name, with the parent and `depends_on` that mocks do not
pass (recorded by a transformation); `manifests` turns its Kubernetes objects back into YAML
documents. Used by the brand stack tests and by tests of single brand parts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await
from ranking_features.brand import Brand, load_brands

REPO = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.31.0"
DIGEST = "sha256:" + "ab" * 32
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
RG_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-recplat"
STORAGE_ID = f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/strecplatlake"
VAULT_ID = f"{RG_ID}/providers/Microsoft.KeyVault/vaults/kv-recplat"
MLFLOW_PRINCIPAL = "principal-id-recplat-dev-mlflow"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
BUILTIN_KINDS = {
    "Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "ServiceAccount",
    "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress",
    "CronJob", "Job",
}  # fmt: skip


@dataclass
class PlannedResource:
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str | None = None
    depends_on: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.type.rsplit(":", 1)[-1]


class _Mocks(pulumi.runtime.Mocks):
    """Outputs shaped like Azure's: ids, names and principal/client ids from the inputs; random
    ids drawn from ``random_seed`` and the resource name, as a new ``pulumi up`` would draw."""

    def __init__(self, planned: dict[str, PlannedResource], random_seed: str = "") -> None:
        self.planned = planned
        self.random_seed = random_seed

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.planned.setdefault(args.name, PlannedResource(args.typ, args.name, {})).inputs = dict(
            args.inputs
        )
        outputs = dict(args.inputs)
        if args.typ == "azure-native:managedidentity:UserAssignedIdentity":
            outputs.update(
                name=args.inputs["resourceName"],
                principalId=f"principal-{args.inputs['resourceName']}",
                clientId=f"client-{args.inputs['resourceName']}",
            )
        if args.typ == "random:index/randomId:RandomId":
            drawn = hashlib.sha256(f"{self.random_seed}/{args.name}".encode()).digest()
            outputs.update(hex=drawn[: int(args.inputs["byteLength"])].hex())
        return f"{args.name}-id", outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def plan_brands(
    brands: Iterable[Brand],
    environment: str,
    *,
    dask_enabled: bool = True,
    random_seed: str = "",
) -> dict[str, PlannedResource]:
    """Run one BrandStack per brand under the mocks; every resource by logical name."""
    import pulumi_kubernetes as k8s

    from infra.brand_inputs import BrandImages, BrandPlatform
    from infra.brand_stack import BrandStack, BrandStackArgs

    planned: dict[str, PlannedResource] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        depends = [getattr(dep, "_name", "?") for dep in (args.opts.depends_on or [])]  # type: ignore[union-attr]
        parent = getattr(args.opts.parent, "_name", None)
        planned[args.name] = PlannedResource(args.type_, args.name, {}, parent, depends)
        return None

    def program() -> None:
        platform = BrandPlatform(
            environment=environment,
            subscription_id="00000000-0000-4000-8000-00000000c0de",
            location="westeurope",
            resource_group_name="rg-recplat",
            tags={"environment": environment, "managed-by": "pulumi", "project": "recplat"},
            tenant_id="11111111-1111-1111-1111-111111111111",
            storage_account_name="strecplatlake",
            storage_account_id=STORAGE_ID,
            key_vault_name="kv-recplat",
            key_vault_id=VAULT_ID,
            oidc_issuer_url="https://westeurope.oic.prod-aks.azure.com/tenant/issuer/",
            acr_login_server="acrrecplat.azurecr.io",
            images=BrandImages(
                service=f"ranking-service@{DIGEST}", training=f"ranking-training@{DIGEST}"
            ),
            mlflow_tracking_uri="http://mlflow.mlflow.svc.cluster.local:5000",
            mlflow_identity_principal_id=MLFLOW_PRINCIPAL,
            mlflow_identity_client_id="33333333-3333-3333-3333-333333333333",
            mlflow_image=f"acrrecplat.azurecr.io/mlflow@{DIGEST}",
            mlflow_access_ready=(),
            mlflow_namespace="mlflow",
            ingress_namespace="app-routing-system",
            ingress_class_name="recplat.approuting.kubernetes.azure.com",
            ingress_host="api.recplat-test.example.com",
            ingress_certificate_uri="https://kv-recplat.vault.azure.net/certificates/api-tls",
            azure_monitor_workspace_id=f"{RG_ID}/providers/Microsoft.Monitor/accounts/amw",
            action_group_id=f"{RG_ID}/providers/Microsoft.Insights/actionGroups/ag",
            cluster_name="aks-recplat",
            k8s_provider=k8s.Provider("k8s", kubeconfig="{}"),
            dask_enabled=dask_enabled,
        )
        for brand in brands:
            # A component's transformations run on all its children: that is how the
            # harness sees each child's parent and depends_on, which mocks do not pass.
            BrandStack(
                brand.name,
                BrandStackArgs(brand=brand, platform=platform),
                pulumi.ResourceOptions(transformations=[record]),
            )

    pulumi.runtime.set_mocks(
        _Mocks(planned, random_seed), project="recplat", stack=environment, preview=False
    )
    _sync_await(run_pulumi_func(program))
    return planned


def manifests(planned: dict[str, PlannedResource]) -> list[dict[str, Any]]:
    """The Kubernetes objects, with the mock runtime's floats turned back into integers."""

    def normalise(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {key: normalise(item) for key, item in value.items()}
        if isinstance(value, list):
            return [normalise(item) for item in value]
        return value

    return [
        normalise(resource.inputs)
        for resource in planned.values()
        if resource.type.startswith("kubernetes:") and "apiVersion" in resource.inputs
    ]


EXAMPLE_BRANDS = load_brands(REPO / "brands")
