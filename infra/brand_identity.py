"""BrandIdentity: who a brand's workloads are to Azure, and the least each may touch.

One managed identity per workload, so that what a pod may read is what its job needs:
the internet-facing service can never fetch the training job's MLflow writer password.
Each identity trusts its Kubernetes ServiceAccount through a federated credential
(workload identity: no keys anywhere), and holds roles on the brand's own lake container
and Key Vault secrets (``BrandData``) only. The MLflow server's identity may read the
brand's two MLflow passwords, to set them on the brand's users.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure_native

from infra.azure_roles import (
    KEY_VAULT_SECRETS_USER,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DATA_READER,
)
from infra.brand_data import BrandData
from infra.brand_inputs import BrandPlatform
from infra.brand_moves import child_options
from infra.brand_names import BrandNames, BrandSecret

WORKLOAD_IDENTITY_AUDIENCE = "api://AzureADTokenExchange"


def role_definition_id(scope_in_subscription: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    """The subscription-qualified id of a built-in role, from a resource id in that subscription."""
    return pulumi.Output.from_input(scope_in_subscription).apply(
        lambda resource_id: (
            f"/subscriptions/{resource_id.split('/')[2]}"
            f"/providers/Microsoft.Authorization/roleDefinitions/{role}"
        )
    )


@dataclass(frozen=True)
class BrandIdentityArgs:
    """The brand's names and tags, what it keeps (``BrandData``) and the environment."""

    names: BrandNames
    tags: dict[str, str]
    data: BrandData
    platform: BrandPlatform
    moved_from: pulumi.Resource | None = None
    """The children's former parent (``infra.brand_moves``)."""


@dataclass(frozen=True)
class _Grant:
    """One role assignment: its logical name, whom, which role, on what, and why."""

    name: str
    principal_id: pulumi.Input[str]
    role: str
    scope: pulumi.Input[str]
    what: str
    dependency: pulumi.Resource


class BrandIdentity(pulumi.ComponentResource):
    """The service's and training's identities, their federated credentials and grants."""

    service_client_id: pulumi.Output[str]
    training_client_id: pulumi.Output[str]
    signed_in: list[pulumi.Resource]
    """What a pod waits for: its identity can sign in and holds its grants."""
    server_reads: list[pulumi.Resource]
    """The MLflow server's grants on the brand's passwords; the access Job waits for them."""

    def __init__(
        self, name: str, args: BrandIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:brand:BrandIdentity", name, None, opts)
        names = args.names
        identities, federations = self._identities(args)
        service, training = identities["service"].principal_id, identities["training"].principal_id
        data = args.data
        grants = [
            # The service ships impressions and feedback into the lake; training only reads it.
            _Grant("lake-contributor", service, STORAGE_BLOB_DATA_CONTRIBUTOR,
                   data.container_scope,
                   "the service writes events to its own lake container only", data.container),
            _Grant("training-lake-reader", training, STORAGE_BLOB_DATA_READER,
                   data.container_scope, "training reads its own lake container only",
                   data.container),
            *(
                _Grant(grant, principal, KEY_VAULT_SECRETS_USER, data.secret_scope(secret), what,
                       data.secrets[secret])
                for grant, principal, secret, what in (
                    ("api-key-reader", service, BrandSecret.API_KEY,
                     "the service reads its API key only"),
                    ("mlflow-reader-password-reader", service, BrandSecret.MLFLOW_READER_PASSWORD,
                     "the service reads its read-only MLflow password only"),
                    ("mlflow-password-reader", training, BrandSecret.MLFLOW_PASSWORD,
                     "training reads its MLflow writer password only"),
                )
            ),
        ]  # fmt: skip
        # The brand's MLflow access Job (infra/mlflow_access.py) sets both passwords on the
        # brand's MLflow users, so the server's identity may read these two secrets too. The
        # grants live here so that they come and go with the brand.
        server_reads = [
            _Grant(f"mlflow-server-reads-{purpose}", args.platform.mlflow_identity_principal_id,
                   KEY_VAULT_SECRETS_USER, data.secret_scope(secret),
                   f"the MLflow server sets brand {names.brand}'s {purpose}", data.secrets[secret])
            for purpose, secret in (
                ("password", BrandSecret.MLFLOW_PASSWORD),
                ("reader-password", BrandSecret.MLFLOW_READER_PASSWORD),
            )
        ]  # fmt: skip
        assigned = [self._assign(grant, args) for grant in grants]
        self.server_reads = [self._assign(grant, args) for grant in server_reads]
        self.signed_in = [*federations, *assigned]
        self.service_client_id = identities["service"].client_id
        self.training_client_id = identities["training"].client_id
        self.register_outputs(
            {
                "serviceIdentityClientId": self.service_client_id,
                "trainingIdentityClientId": self.training_client_id,
            }
        )

    def _identities(
        self, args: BrandIdentityArgs
    ) -> tuple[
        dict[str, azure_native.managedidentity.UserAssignedIdentity],
        list[azure_native.managedidentity.FederatedIdentityCredential],
    ]:
        names, platform = args.names, args.platform
        child = child_options(self, args.moved_from)
        identities: dict[str, azure_native.managedidentity.UserAssignedIdentity] = {}
        federations = []
        for workload, identity_name, credential, account in (
            ("service", names.service_identity, names.service_federation, names.service_account),
            ("training", names.identity, names.training_federation,
             names.training_service_account),
        ):  # fmt: skip
            identities[workload] = azure_native.managedidentity.UserAssignedIdentity(
                f"{names.brand}-{workload}-identity",
                resource_name_=identity_name,
                resource_group_name=platform.resource_group_name,
                location=platform.location,
                tags=args.tags,
                opts=child,
            )
            federations.append(
                azure_native.managedidentity.FederatedIdentityCredential(
                    f"{names.brand}-{credential}",
                    federated_identity_credential_resource_name=credential,
                    resource_name_=identities[workload].name,
                    resource_group_name=platform.resource_group_name,
                    issuer=platform.oidc_issuer_url,
                    subject=f"system:serviceaccount:{names.namespace}:{account}",
                    audiences=[WORKLOAD_IDENTITY_AUDIENCE],
                    opts=child,
                )
            )
        return identities, federations

    def _assign(
        self, grant: _Grant, args: BrandIdentityArgs
    ) -> azure_native.authorization.RoleAssignment:
        names, platform = args.names, args.platform
        return azure_native.authorization.RoleAssignment(
            f"{names.brand}-{grant.name}",
            role_assignment_name=names.role_assignment_name(grant.name, platform.subscription_id),
            principal_id=grant.principal_id,
            # Without it Azure assumes a User and the assignment can fail to resolve.
            principal_type=azure_native.authorization.PrincipalType.SERVICE_PRINCIPAL,
            role_definition_id=role_definition_id(platform.storage_account_id, grant.role),
            scope=grant.scope,
            description=f"recplat brand {names.brand}: {grant.what}",
            # A replacement keeps principal, role and scope, which Azure refuses to assign
            # twice (RoleAssignmentExists): the old one must go first.
            opts=child_options(
                self, args.moved_from, depends_on=[grant.dependency], delete_before_replace=True
            ),
        )
