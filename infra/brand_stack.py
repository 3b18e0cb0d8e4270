"""BrandStack: everything one brand needs in one environment, isolated from every other brand.

Adding ``brands/<name>.yaml`` is the whole of onboarding: ``__main__`` stamps one
BrandStack per brand listed for the stack. This module owns the Azure side (identity,
federated credentials, least-privilege role assignments, lake container, API key,
MLflow password, alert rules) and wires in the Kubernetes side built by ``brand_namespace``,
``brand_service`` and ``brand_training``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure_native
import pulumi_random as random
from ranking_features.brand import Brand

from infra.brand_alerts import brand_alert_rules, create_rule_group, rule_file
from infra.brand_inputs import BrandPlatform
from infra.brand_names import (
    BRAND_LABEL,
    COST_CENTER_LABEL,
    OWNER_LABEL,
    SECRET_SUFFIX_BYTES,
    BrandNames,
    BrandSecret,
    brand_names,
    label_value,
)
from infra.brand_namespace import create_guard_rails, create_namespace
from infra.brand_pods import BrandWorkloadContext
from infra.brand_service import create_service
from infra.brand_training import create_training
from infra.dashboards.azure_dashboard import AzureDashboard, AzureDashboardArgs
from infra.dashboards.brand_dashboard import BrandDashboardArgs, brand_dashboard
from infra.dashboards.panels import dashboard_json
from infra.mlflow_access import MlflowAccess, MlflowAccessArgs

# Built-in role definitions (same GUID in every Azure tenant).
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
WORKLOAD_IDENTITY_AUDIENCE = "api://AzureADTokenExchange"
API_KEY_LENGTH = 48
MLFLOW_PASSWORD_LENGTH = 40


@dataclass(frozen=True)
class BrandStackArgs:
    """A brand, already merged for the environment, and what the environment shares with it."""

    brand: Brand
    platform: BrandPlatform


def _role_definition_id(scope_in_subscription: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    """The subscription-qualified id of a built-in role, from a resource id in that subscription."""
    return pulumi.Output.from_input(scope_in_subscription).apply(
        lambda resource_id: (
            f"/subscriptions/{resource_id.split('/')[2]}"
            f"/providers/Microsoft.Authorization/roleDefinitions/{role}"
        )
    )


class BrandStack(pulumi.ComponentResource):
    """One brand in one environment: namespace, identity, lake, service, training and alerts."""

    names: BrandNames
    rule_file: str
    """The brand's alert rules as a Prometheus rule file (what ``promtool`` tests)."""
    namespace: pulumi.Output[str]
    service_identity_client_id: pulumi.Output[str]
    training_identity_client_id: pulumi.Output[str]
    lake_uri: pulumi.Output[str]

    def __init__(
        self, name: str, args: BrandStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:brand:BrandStack", name, None, opts)
        brand, platform = args.brand, args.platform
        if name != brand.name:
            raise ValueError(
                f"BrandStack {name!r}: the resource name must be the brand name {brand.name!r}"
            )
        if platform.environment not in {env.value for env in brand.environments}:
            raise ValueError(
                f"BrandStack {brand.name!r}: the brand does not list environment "
                f"{platform.environment!r}; add it to `environments` in brands/{brand.name}.yaml"
            )
        if brand.training.workers and not platform.dask_enabled:
            raise ValueError(
                f"brands/{brand.name}.yaml: training.workers: {brand.training.workers} needs the "
                f"Dask operator, which stack {platform.environment!r} does not install; set "
                f"overrides.{platform.environment}.training.workers to 0 or enable Dask"
            )
        names = brand_names(brand.name, platform.environment)
        self.names = names
        tags = {
            **platform.tags,
            "brand": brand.name,
            "owner": brand.owner,
            "cost-center": brand.cost_center,
        }
        labels = {
            "app.kubernetes.io/part-of": "recplat",
            "app.kubernetes.io/managed-by": "pulumi",
            BRAND_LABEL: brand.name,
            OWNER_LABEL: label_value(brand.owner),
            COST_CENTER_LABEL: label_value(brand.cost_center),
        }
        annotations = {
            "recplat.io/owner": brand.owner,
            "recplat.io/display-name": brand.display_name,
        }
        child = pulumi.ResourceOptions(parent=self)
        k8s_child = pulumi.ResourceOptions(parent=self, provider=platform.k8s_provider)

        # One identity per workload, so that what a pod may read is what its job needs: the
        # internet-facing service can never fetch the training job's MLflow writer password.
        identities: dict[str, azure_native.managedidentity.UserAssignedIdentity] = {}
        federations: list[pulumi.Resource] = []
        for workload, identity_name, credential, account in (
            ("service", names.service_identity, names.service_federation, names.service_account),
            ("training", names.identity, names.training_federation,
             names.training_service_account),
        ):  # fmt: skip
            identities[workload] = azure_native.managedidentity.UserAssignedIdentity(
                f"{brand.name}-{workload}-identity",
                resource_name_=identity_name,
                resource_group_name=platform.resource_group_name,
                location=platform.location,
                tags=tags,
                opts=child,
            )
            federations.append(
                azure_native.managedidentity.FederatedIdentityCredential(
                    f"{brand.name}-{credential}",
                    federated_identity_credential_resource_name=credential,
                    resource_name_=identities[workload].name,
                    resource_group_name=platform.resource_group_name,
                    issuer=platform.oidc_issuer_url,
                    subject=f"system:serviceaccount:{names.namespace}:{account}",
                    audiences=[WORKLOAD_IDENTITY_AUDIENCE],
                    opts=child,
                )
            )

        container = azure_native.storage.BlobContainer(
            f"{brand.name}-lake",
            container_name=names.lake_container,
            account_name=platform.storage_account_name,
            resource_group_name=platform.resource_group_name,
            public_access=azure_native.storage.PublicAccess.NONE,
            # Containers take no tags; metadata carries the same facts.
            metadata={"brand": brand.name, "cost_center": brand.cost_center},
            opts=child,
        )
        # The API key (callers of the service) and the passwords of the brand's two MLflow
        # users (the writer for training, the reader for serving) live in Key Vault only;
        # pods read them as files. Their names end in a suffix drawn with the brand: Key Vault
        # keeps a deleted secret's name for its retention period (unpurgeable under purge
        # protection), so a brand removed and added again needs names it never had.
        suffix = random.RandomId(
            f"{brand.name}-secret-suffix", byte_length=SECRET_SUFFIX_BYTES, opts=child
        )
        secret_names: dict[BrandSecret, pulumi.Output[str]] = {
            secret: suffix.hex.apply(functools.partial(names.secret_name, secret))
            for secret in BrandSecret
        }
        secrets: dict[BrandSecret, azure_native.keyvault.Secret] = {}
        for secret, length in (
            (BrandSecret.API_KEY, API_KEY_LENGTH),
            (BrandSecret.MLFLOW_PASSWORD, MLFLOW_PASSWORD_LENGTH),
            (BrandSecret.MLFLOW_READER_PASSWORD, MLFLOW_PASSWORD_LENGTH),
        ):
            value = random.RandomPassword(
                f"{brand.name}-{secret}", length=length, special=False, opts=child
            )
            secrets[secret] = azure_native.keyvault.Secret(
                f"{brand.name}-{secret}-secret",
                secret_name=secret_names[secret],
                vault_name=platform.key_vault_name,
                resource_group_name=platform.resource_group_name,
                properties=azure_native.keyvault.SecretPropertiesArgs(
                    value=value.result, content_type="text/plain"
                ),
                tags=tags,
                opts=child,
            )
        container_scope = pulumi.Output.concat(
            platform.storage_account_id, "/blobServices/default/containers/", names.lake_container
        )

        def secret_scope(secret: BrandSecret) -> pulumi.Output[str]:
            return pulumi.Output.concat(platform.key_vault_id, "/secrets/", secret_names[secret])

        def grant(
            role_name: str,
            principal_id: pulumi.Input[str],
            role: str,
            scope: pulumi.Input[str],
            what: str,
            dependency: pulumi.Resource,
        ) -> azure_native.authorization.RoleAssignment:
            return azure_native.authorization.RoleAssignment(
                f"{brand.name}-{role_name}",
                role_assignment_name=names.role_assignment_name(
                    role_name, platform.subscription_id
                ),
                principal_id=principal_id,
                # Without it Azure assumes a User and the assignment can fail to resolve.
                principal_type=azure_native.authorization.PrincipalType.SERVICE_PRINCIPAL,
                role_definition_id=_role_definition_id(platform.storage_account_id, role),
                scope=scope,
                description=f"recplat brand {brand.name}: {what}",
                # A replacement keeps principal, role and scope, which Azure refuses to assign
                # twice (RoleAssignmentExists): the old one must go first.
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[dependency], delete_before_replace=True
                ),
            )

        service, training = identities["service"].principal_id, identities["training"].principal_id
        grants = [
            # The service ships impressions and feedback into the lake; training only reads it.
            grant("lake-contributor", service, STORAGE_BLOB_DATA_CONTRIBUTOR, container_scope,
                  "the service writes events to its own lake container only", container),
            grant("training-lake-reader", training, STORAGE_BLOB_DATA_READER, container_scope,
                  "training reads its own lake container only", container),
            grant("api-key-reader", service, KEY_VAULT_SECRETS_USER,
                  secret_scope(BrandSecret.API_KEY), "the service reads its API key only",
                  secrets[BrandSecret.API_KEY]),
            grant("mlflow-reader-password-reader", service, KEY_VAULT_SECRETS_USER,
                  secret_scope(BrandSecret.MLFLOW_READER_PASSWORD),
                  "the service reads its read-only MLflow password only",
                  secrets[BrandSecret.MLFLOW_READER_PASSWORD]),
            grant("mlflow-password-reader", training, KEY_VAULT_SECRETS_USER,
                  secret_scope(BrandSecret.MLFLOW_PASSWORD),
                  "training reads its MLflow writer password only",
                  secrets[BrandSecret.MLFLOW_PASSWORD]),
        ]  # fmt: skip
        # The brand's MLflow access Job (infra/mlflow_access.py) sets both passwords on the
        # brand's MLflow users, so the server's identity may read these two secrets too. The
        # grants live here so that they come and go with the brand.
        server_reads = [
            grant(f"mlflow-server-reads-{purpose}", platform.mlflow_identity_principal_id,
                  KEY_VAULT_SECRETS_USER, secret_scope(secret),
                  f"the MLflow server sets brand {brand.name}'s {purpose}", secrets[secret])
            for purpose, secret in (
                ("password", BrandSecret.MLFLOW_PASSWORD),
                ("reader-password", BrandSecret.MLFLOW_READER_PASSWORD),
            )
        ]  # fmt: skip

        rules = brand_alert_rules(brand, platform.environment)
        self.rule_file = rule_file(names, rules)
        create_rule_group(f"{brand.name}-alerts", names, rules, platform, tags, child)
        AzureDashboard(
            f"{brand.name}-dashboard",
            AzureDashboardArgs(
                dashboard_name=f"recplat-{platform.environment}-{brand.name}",
                definition=dashboard_json(brand_dashboard(BrandDashboardArgs.from_brand(brand))),
                resource_group_name=platform.resource_group_name,
                location=platform.location,
                tags=tags,
            ),
            opts=child,
        )

        namespace = create_namespace(brand, names, labels, annotations, k8s_child)
        in_namespace = pulumi.ResourceOptions(
            parent=self, provider=platform.k8s_provider, depends_on=[namespace]
        )
        create_guard_rails(
            brand,
            names,
            labels,
            mlflow_namespace=platform.mlflow_namespace,
            mlflow_port=platform.mlflow_port,
            ingress_namespace=platform.ingress_namespace,
            private_endpoint_cidrs=platform.private_endpoint_cidrs,
            opts=in_namespace,
        )
        lake_uri = pulumi.Output.concat(
            "abfs://",
            names.lake_container,
            "@",
            platform.storage_account_name,
            ".dfs.core.windows.net/",
        )
        # Before any brand workload: the admin reserves the brand's MLflow names and grants
        # them to the brand's users only, or refuses (infra/mlflow_access.py).
        mlflow_access = MlflowAccess(
            f"{brand.name}-mlflow-access",
            MlflowAccessArgs(
                names=names,
                password_secret_names=(
                    secret_names[BrandSecret.MLFLOW_PASSWORD],
                    secret_names[BrandSecret.MLFLOW_READER_PASSWORD],
                ),
                image=platform.mlflow_image,
                identity_client_id=platform.mlflow_identity_client_id,
                key_vault_name=platform.key_vault_name,
                tenant_id=platform.tenant_id,
                provider=platform.k8s_provider,
                password_versions=[
                    secrets[secret].properties.apply(
                        lambda properties: properties.secret_uri_with_version
                    )
                    for secret in (BrandSecret.MLFLOW_PASSWORD, BrandSecret.MLFLOW_READER_PASSWORD)
                ],
                ready=(*platform.mlflow_access_ready, *server_reads),
            ),
            opts=child,
        )
        context = BrandWorkloadContext(
            brand=brand,
            names=names,
            secret_names=secret_names,
            environment=platform.environment,
            labels=labels,
            tracking_uri=platform.mlflow_tracking_uri,
            lake_uri=lake_uri,
            service_identity_client_id=identities["service"].client_id,
            training_identity_client_id=identities["training"].client_id,
            acr_login_server=platform.acr_login_server,
            # Pods start only once their identity can sign in and has its grants, and their
            # MLflow names are reserved for them.
            k8s_opts=pulumi.ResourceOptions(
                parent=self,
                provider=platform.k8s_provider,
                depends_on=[namespace, *federations, *grants, mlflow_access],
            ),
        )
        create_service(
            context,
            platform.images.service,
            key_vault_name=platform.key_vault_name,
            tenant_id=platform.tenant_id,
            ingress_class_name=platform.ingress_class_name,
            ingress_host=platform.ingress_host,
            tls_certificate_uri=platform.ingress_certificate_uri,
        )
        create_training(
            context,
            platform.images.training,
            key_vault_name=platform.key_vault_name,
            tenant_id=platform.tenant_id,
            dask_operator=platform.dask_operator,
        )

        self.namespace = namespace.id.apply(lambda _: names.namespace)
        self.service_identity_client_id = identities["service"].client_id
        self.training_identity_client_id = identities["training"].client_id
        self.lake_uri = lake_uri
        self.register_outputs(
            {
                "namespace": self.namespace,
                "serviceIdentityClientId": self.service_identity_client_id,
                "trainingIdentityClientId": self.training_identity_client_id,
                "lakeUri": self.lake_uri,
                "apiKeySecretName": secret_names[BrandSecret.API_KEY],
                "mlflowUser": names.mlflow_user,
                "mlflowReader": names.mlflow_reader,
            }
        )
