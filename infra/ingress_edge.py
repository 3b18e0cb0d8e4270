"""The brand APIs' HTTPS edge: an app-routing NGINX controller and its Key Vault certificate.

AKS's application routing add-on runs NGINX controllers described by
``NginxIngressController`` objects. Its ``default`` controller sits behind a public
load balancer, so recplat runs its own controller, internal unless stack config says
``exposure: public``. TLS terminates there with a certificate the add-on reads from
the environment's Key Vault (the ``kubernetes.azure.com/tls-cert-keyvault-uri``
Ingress annotation), which needs the add-on's managed identity to hold Key Vault
Secrets User on the vault: what ``az aks approuting update --attach-kv`` grants.
See https://learn.microsoft.com/azure/aks/app-routing-dns-ssl and
https://learn.microsoft.com/azure/aks/app-routing-nginx-configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import containerservice

from infra import azure_roles
from infra.config import IngressConfig, IngressExposure
from infra.environment_names import EnvironmentNames

CONTROLLER_NAME = "recplat"
# Immutable once created (the CRD's own validation), so neither depends on the exposure.
INGRESS_CLASS = "recplat.approuting.kubernetes.azure.com"
CONTROLLER_NAME_PREFIX = "nginx-recplat"
_INTERNAL_LB = "service.beta.kubernetes.io/azure-load-balancer-internal"


def load_balancer_annotations(exposure: IngressExposure) -> dict[str, str]:
    """Annotations of the controller's Service: an internal Azure load balancer unless public."""
    return {_INTERNAL_LB: "true" if exposure is IngressExposure.INTERNAL else "false"}


@dataclass(frozen=True)
class IngressEdgeArgs:
    """Inputs of ``IngressEdge``."""

    config: IngressConfig
    names: EnvironmentNames
    subscription_id: str
    resource_group_name: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    key_vault_id: pulumi.Input[str]
    key_vault_uri: pulumi.Input[str]
    """``https://<vault>.vault.azure.net/`` (with the trailing slash Azure returns)."""
    provider: k8s.Provider


class IngressEdge(pulumi.ComponentResource):
    """The controller brand Ingresses use, the certificate URI, and the add-on's vault access."""

    ingress_class_name: str
    host: str
    certificate_uri: pulumi.Output[str]

    def __init__(
        self, name: str, args: IngressEdgeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:ingress:IngressEdge", name, None, opts)
        config = args.config

        # The add-on's identity exists once the cluster does; only the cluster knows it.
        cluster = containerservice.get_managed_cluster_output(
            resource_group_name=args.resource_group_name, resource_name=args.cluster_name
        )
        add_on_object_id = cluster.ingress_profile.apply(
            lambda profile: (
                (
                    profile.web_app_routing.identity.object_id
                    if profile and profile.web_app_routing and profile.web_app_routing.identity
                    else None
                )
                or ""
            )
        )
        # Vault scope, not the certificate's secret: that secret may not exist yet on a first
        # `pulumi up`, and Azure refuses a role assignment on a scope that does not exist.
        vault_access = azure_roles.assign_role(
            f"{name}-app-routing-vault-secrets",
            subscription_id=args.subscription_id,
            role=azure_roles.KEY_VAULT_SECRETS_USER,
            principal_id=add_on_object_id,
            principal_type="ServicePrincipal",
            scope=args.key_vault_id,
            parent=self,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-controller",
            api_version="approuting.kubernetes.azure.com/v1alpha1",
            kind="NginxIngressController",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CONTROLLER_NAME),
            spec={
                "ingressClassName": INGRESS_CLASS,
                "controllerNamePrefix": CONTROLLER_NAME_PREFIX,
                "loadBalancerAnnotations": load_balancer_annotations(config.exposure),
            },
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=[vault_access]
            ),
        )

        self.ingress_class_name = INGRESS_CLASS
        self.host = config.host
        # Unversioned, so the add-on picks up a renewed certificate by itself.
        self.certificate_uri = pulumi.Output.from_input(args.key_vault_uri).apply(
            lambda uri: f"{uri.rstrip('/')}/certificates/{config.certificate_name}"
        )
        self.register_outputs(
            {"ingressClassName": self.ingress_class_name, "certificateUri": self.certificate_uri}
        )
