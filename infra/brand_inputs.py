"""What the environment hands every BrandStack: the shared resources a brand builds on.

The environment layer (network, cluster, lake, vault, MLflow, monitoring) creates
these once per stack; ``__main__`` passes one ``BrandPlatform`` to each
``BrandStack``. Keeping the hand-over in one typed place is what lets the two
layers evolve apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class BrandImages:
    """Container images a brand runs, pinned by tag or digest from stack config."""

    service: str
    training: str


@dataclass(frozen=True)
class BrandPlatform:
    """Shared environment resources that every brand stack references."""

    environment: str
    """Stack name: ``dev`` or ``prod``."""
    subscription_id: str
    """The stack's subscription; part of every brand role assignment name (unique per tenant)."""
    location: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    tags: dict[str, str]
    """Environment tags (environment, managed-by, project) every Azure resource carries."""
    tenant_id: pulumi.Input[str]
    storage_account_name: pulumi.Input[str]
    storage_account_id: pulumi.Input[str]
    key_vault_name: pulumi.Input[str]
    key_vault_id: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    acr_login_server: pulumi.Input[str]
    images: BrandImages
    mlflow_tracking_uri: pulumi.Input[str]
    mlflow_identity_principal_id: pulumi.Input[str]
    """The MLflow server's identity: it may read each brand's MLflow password to set it."""
    mlflow_identity_client_id: pulumi.Input[str]
    mlflow_image: str
    """The MLflow server's image, which also runs each brand's MLflow access Job."""
    mlflow_access_ready: tuple[pulumi.Resource, ...]
    """What a brand's MLflow access Job waits for: the server and the Jobs' NetworkPolicy."""
    mlflow_namespace: str
    """Namespace of the MLflow server; brand NetworkPolicies allow egress to it only."""
    ingress_namespace: str
    """Namespace of the managed ingress controller allowed to reach brand services."""
    ingress_class_name: str
    """Class of the environment's HTTPS edge controller (internal unless configured public)."""
    ingress_host: str
    """The one DNS host every brand API is served on, under ``/brands/<name>/``."""
    ingress_certificate_uri: pulumi.Input[str]
    """Unversioned Key Vault URI of the edge's TLS certificate (it covers ``ingress_host``)."""
    azure_monitor_workspace_id: pulumi.Input[str]
    action_group_id: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    k8s_provider: k8s.Provider
    dask_enabled: bool
    """Whether the Dask operator is installed, so ``training.workers > 0`` runs on a DaskCluster."""
    dask_operator: tuple[pulumi.Resource, ...] = ()
    """The operator's Helm release: it installs the DaskCluster CRD, so DaskClusters wait for it."""
    mlflow_port: int = 5000
    """Port of the MLflow Service; brand egress policies open only this port to it."""
    private_endpoint_cidrs: tuple[str, ...] = ()
    """Private-endpoint subnet prefixes (stacks with private endpoints), for brand HTTPS egress."""
