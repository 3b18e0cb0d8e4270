"""BrandStack: everything one brand needs in one environment, isolated from every other brand.

Adding ``brands/<name>.yaml`` is the whole of onboarding: ``__main__`` stamps one
BrandStack per brand listed for the stack. A BrandStack only derives the brand's names,
tags and labels and wires its components together, each in its own module with typed
Args:

- ``BrandData``: the lake container and the Key Vault secrets (``infra.brand_data``);
- ``BrandIdentity``: the workloads' identities and least-privilege grants
  (``infra.brand_identity``);
- ``BrandMonitoring``: alert rules and dashboard (``infra.brand_monitoring``);
- ``BrandGuardRails``: namespace, quota, limits, network policies (``infra.brand_namespace``);
- ``MlflowAccess``: the brand's MLflow users and names (``infra.mlflow_access``);
- ``RankingService`` and ``TrainingJob`` (with ``BrandDask``): the workloads
  (``infra.brand_service``, ``infra.brand_training``, ``infra.brand_dask``).

Before issue 17 every resource was a direct child of the BrandStack; the components alias
their children to it (``infra.brand_moves``), so a deployed stack is moved, not replaced.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from ranking_features.brand import Brand

from infra.brand_data import BrandData, BrandDataArgs
from infra.brand_identity import BrandIdentity, BrandIdentityArgs
from infra.brand_inputs import BrandPlatform
from infra.brand_monitoring import BrandMonitoring, BrandMonitoringArgs
from infra.brand_names import (
    BRAND_LABEL,
    COST_CENTER_LABEL,
    OWNER_LABEL,
    BrandNames,
    BrandSecret,
    brand_names,
    label_value,
)
from infra.brand_namespace import BrandGuardRails, GuardRailsArgs
from infra.brand_pods import BrandWorkloadContext
from infra.brand_service import RankingService, RankingServiceArgs
from infra.brand_training import TrainingJob, TrainingJobArgs
from infra.mlflow_access import MlflowAccess, MlflowAccessArgs

BRAND_STACK_TYPE = "recplat:brand:BrandStack"


@dataclass(frozen=True)
class BrandStackArgs:
    """A brand, already merged for the environment, and what the environment shares with it."""

    brand: Brand
    platform: BrandPlatform

    def __post_init__(self) -> None:
        brand, platform = self.brand, self.platform
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

    def tags(self) -> dict[str, str]:
        """The environment's tags and the brand's: every brand Azure resource carries them."""
        brand = self.brand
        return {
            **self.platform.tags,
            "brand": brand.name,
            "owner": brand.owner,
            "cost-center": brand.cost_center,
        }

    def labels(self) -> dict[str, str]:
        """The labels every brand Kubernetes object carries."""
        brand = self.brand
        return {
            "app.kubernetes.io/part-of": "recplat",
            "app.kubernetes.io/managed-by": "pulumi",
            BRAND_LABEL: brand.name,
            OWNER_LABEL: label_value(brand.owner),
            COST_CENTER_LABEL: label_value(brand.cost_center),
        }


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
        super().__init__(BRAND_STACK_TYPE, name, None, opts)
        brand, platform = args.brand, args.platform
        if name != brand.name:
            raise ValueError(
                f"BrandStack {name!r}: the resource name must be the brand name {brand.name!r}"
            )
        self.names = names = brand_names(brand.name, platform.environment)
        tags, child = args.tags(), pulumi.ResourceOptions(parent=self)
        data = BrandData(
            f"{brand.name}-data",
            BrandDataArgs(names, brand.cost_center, tags, platform, moved_from=self),
            child,
        )
        identity = BrandIdentity(
            f"{brand.name}-identity",
            BrandIdentityArgs(names, tags, data, platform, moved_from=self),
            child,
        )
        self.rule_file = BrandMonitoring(
            f"{brand.name}-monitoring",
            BrandMonitoringArgs(brand, names, tags, platform, moved_from=self),
            child,
        ).rule_file
        guard_rails = self._guard_rails(args, names)
        mlflow_access = self._mlflow_access(args, names, data, identity)
        self._workloads(
            args, self._workload_context(args, data, identity, guard_rails, mlflow_access)
        )
        self.namespace = guard_rails.namespace.id.apply(lambda _: names.namespace)
        self.service_identity_client_id = identity.service_client_id
        self.training_identity_client_id = identity.training_client_id
        self.lake_uri = data.lake_uri
        self.register_outputs(
            {
                "namespace": self.namespace,
                "serviceIdentityClientId": self.service_identity_client_id,
                "trainingIdentityClientId": self.training_identity_client_id,
                "lakeUri": self.lake_uri,
                "apiKeySecretName": data.secret_names[BrandSecret.API_KEY],
                "mlflowUser": names.mlflow_user,
                "mlflowReader": names.mlflow_reader,
            }
        )

    def _guard_rails(self, args: BrandStackArgs, names: BrandNames) -> BrandGuardRails:
        brand, platform = args.brand, args.platform
        return BrandGuardRails(
            f"{brand.name}-guard-rails",
            GuardRailsArgs(
                brand=brand,
                names=names,
                labels=args.labels(),
                annotations={
                    "recplat.io/owner": brand.owner,
                    "recplat.io/display-name": brand.display_name,
                },
                provider=platform.k8s_provider,
                mlflow_namespace=platform.mlflow_namespace,
                ingress_namespace=platform.ingress_namespace,
                mlflow_port=platform.mlflow_port,
                private_endpoint_cidrs=platform.private_endpoint_cidrs,
                moved_from=self,
            ),
            pulumi.ResourceOptions(parent=self),
        )

    def _mlflow_access(
        self, args: BrandStackArgs, names: BrandNames, data: BrandData, identity: BrandIdentity
    ) -> MlflowAccess:
        """Before any brand workload: the admin reserves the brand's MLflow names and grants
        them to the brand's users only, or refuses (infra/mlflow_access.py)."""
        platform = args.platform
        passwords = (BrandSecret.MLFLOW_PASSWORD, BrandSecret.MLFLOW_READER_PASSWORD)
        return MlflowAccess(
            f"{args.brand.name}-mlflow-access",
            MlflowAccessArgs(
                names=names,
                password_secret_names=(
                    data.secret_names[BrandSecret.MLFLOW_PASSWORD],
                    data.secret_names[BrandSecret.MLFLOW_READER_PASSWORD],
                ),
                image=platform.mlflow_image,
                identity_client_id=platform.mlflow_identity_client_id,
                key_vault_name=platform.key_vault_name,
                tenant_id=platform.tenant_id,
                provider=platform.k8s_provider,
                password_versions=[data.secret_version(secret) for secret in passwords],
                ready=(*platform.mlflow_access_ready, *identity.server_reads),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _workload_context(
        self,
        args: BrandStackArgs,
        data: BrandData,
        identity: BrandIdentity,
        guard_rails: BrandGuardRails,
        mlflow_access: MlflowAccess,
    ) -> BrandWorkloadContext:
        brand, platform = args.brand, args.platform
        return BrandWorkloadContext(
            brand=brand,
            names=self.names,
            secret_names=data.secret_names,
            environment=platform.environment,
            labels=args.labels(),
            tracking_uri=platform.mlflow_tracking_uri,
            lake_uri=data.lake_uri,
            service_identity_client_id=identity.service_client_id,
            training_identity_client_id=identity.training_client_id,
            acr_login_server=platform.acr_login_server,
            # Pods start only once their identity can sign in and has its grants, and their
            # MLflow names are reserved for them.
            k8s_opts=pulumi.ResourceOptions(
                provider=platform.k8s_provider,
                depends_on=[guard_rails.namespace, *identity.signed_in, mlflow_access],
            ),
            moved_from=self,
        )

    def _workloads(self, args: BrandStackArgs, context: BrandWorkloadContext) -> None:
        platform, brand = args.platform, args.brand
        RankingService(
            f"{brand.name}-ranking",
            RankingServiceArgs(
                context=context,
                image=platform.images.service,
                key_vault_name=platform.key_vault_name,
                tenant_id=platform.tenant_id,
                ingress_class_name=platform.ingress_class_name,
                ingress_host=platform.ingress_host,
                tls_certificate_uri=platform.ingress_certificate_uri,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        TrainingJob(
            f"{brand.name}-training",
            TrainingJobArgs(
                context=context,
                image=platform.images.training,
                key_vault_name=platform.key_vault_name,
                tenant_id=platform.tenant_id,
                dask_operator=platform.dask_operator,
            ),
            pulumi.ResourceOptions(parent=self),
        )
