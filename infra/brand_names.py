"""Every name a brand's resources carry, derived in one place so limits are checked once.

A brand name is a DNS label of 3 to 24 characters (``recplat.brand``). Azure and
Kubernetes each put their own limits on the names derived from it; ``NAME_LIMITS``
records them and ``brand_names`` refuses a derivation that would break one, so a
bad name fails at plan time with the rule it broke, not at ``pulumi up``.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, fields
from enum import StrEnum

# Deterministic namespace for role assignment GUIDs: the same subscription, brand,
# environment and role always give the same assignment name, so a re-run never duplicates
# one. Azure wants assignment names unique in the tenant, hence the subscription.
_ROLE_ASSIGNMENT_NAMESPACE = uuid.UUID("0f6a4b8e-5d0c-4c38-9d63-2f1f6c1e7a10")

# Labels every brand namespace carries (infra/brand_stack.py); kube-state-metrics is told to
# export exactly these on kube_namespace_labels, so cost reports can group by them.
BRAND_LABEL = "recplat.io/brand"
OWNER_LABEL = "recplat.io/owner"
COST_CENTER_LABEL = "recplat.io/cost-center"
NAMESPACE_COST_LABELS = (BRAND_LABEL, OWNER_LABEL, COST_CENTER_LABEL)

SECRET_SUFFIX_BYTES = 4
"""Random bytes behind each brand's secret-name suffix (``BrandNames.secret_name``): 8 hex
characters, drawn once when the brand is created (infra/brand_stack.py)."""
_LONGEST_SECRET_SUFFIX = "f" * (2 * SECRET_SUFFIX_BYTES)


class BrandSecret(StrEnum):
    """A brand's Key Vault secrets, by purpose; the value is the middle of its name."""

    API_KEY = "api-key"
    MLFLOW_PASSWORD = "mlflow-password"  # noqa: S105 - a purpose, not a secret
    """The brand's MLflow writer (training, evaluator)."""
    MLFLOW_READER_PASSWORD = "mlflow-reader-password"  # noqa: S105 - a purpose, not a secret
    """The brand's read-only MLflow user (serving)."""


_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


@dataclass(frozen=True)
class NameLimit:
    """What one kind of name must match, and the longest it may be."""

    pattern: str
    max_length: int
    min_length: int = 1

    def check(self, field: str, value: str) -> None:
        """Raise ``ValueError`` naming ``field`` when ``value`` breaks this limit."""
        if not self.min_length <= len(value) <= self.max_length:
            raise ValueError(
                f"{field}: {value!r} has {len(value)} characters; "
                f"the limit is {self.min_length} to {self.max_length}"
            )
        if not re.fullmatch(self.pattern, value):
            raise ValueError(f"{field}: {value!r} must match {self.pattern}")


NAME_LIMITS: dict[str, NameLimit] = {
    # Kubernetes: namespaces and Services are DNS labels (RFC 1035 for Services);
    # CronJob names stop at 52 because the controller appends an 11-character suffix.
    "namespace": NameLimit(_DNS_LABEL, 63),
    "service": NameLimit(_DNS_1035_LABEL, 63),
    "deployment": NameLimit(_DNS_LABEL, 63),
    "service_account": NameLimit(_DNS_LABEL, 63),
    "training_service_account": NameLimit(_DNS_LABEL, 63),
    "cron_job": NameLimit(_DNS_LABEL, 52),
    "dask_cluster": NameLimit(_DNS_1035_LABEL, 40),
    "secret_provider_class": NameLimit(_DNS_LABEL, 63),
    "training_secret_provider_class": NameLimit(_DNS_LABEL, 63),
    "mlflow_access_job": NameLimit(_DNS_LABEL, 52),
    "ingress": NameLimit(_DNS_LABEL, 63),
    # Azure: user-assigned identity 3-128, federated credential 3-120, blob container
    # 3-63 lowercase with no doubled dash, Key Vault secret 1-127 (checked with the longest
    # suffix), rule group 1-260.
    "identity": NameLimit(r"[A-Za-z0-9][A-Za-z0-9_-]*", 128, 3),
    "service_identity": NameLimit(r"[A-Za-z0-9][A-Za-z0-9_-]*", 128, 3),
    "service_federation": NameLimit(r"[A-Za-z0-9][A-Za-z0-9_-]*", 120, 3),
    "training_federation": NameLimit(r"[A-Za-z0-9][A-Za-z0-9_-]*", 120, 3),
    "lake_container": NameLimit(r"[a-z0-9](?:-?[a-z0-9])*", 63, 3),
    "api_key_secret": NameLimit(r"[A-Za-z0-9-]+", 127),
    "mlflow_password_secret": NameLimit(r"[A-Za-z0-9-]+", 127),
    "mlflow_reader_password_secret": NameLimit(r"[A-Za-z0-9-]+", 127),
    "rule_group": NameLimit(r"[^:@/#{}%&+*<>?]+", 260),
}


@dataclass(frozen=True)
class BrandNames:
    """The names of one brand's resources in one environment."""

    brand: str
    environment: str
    namespace: str
    service: str
    deployment: str
    service_account: str
    training_service_account: str
    cron_job: str
    dask_cluster: str
    secret_provider_class: str
    """The service's secrets: the API key and the MLflow reader's password."""
    training_secret_provider_class: str
    """The training job's secret: the MLflow writer's password."""
    mlflow_access_job: str
    """Prefix of the Job that reserves the brand's MLflow names (infra/mlflow_access.py)."""
    ingress: str
    identity: str
    """The training job's identity (lake, MLflow writer password)."""
    service_identity: str
    """The ranking service's identity (lake events, API key, MLflow reader password)."""
    service_federation: str
    training_federation: str
    lake_container: str
    rule_group: str

    @property
    def ingress_path(self) -> str:
        """The URL prefix the brand's API is served under."""
        return f"/brands/{self.brand}/"

    @property
    def mlflow_user(self) -> str:
        """The brand's MLflow writer (training, evaluator); password ``MLFLOW_PASSWORD``."""
        return f"brand-{self.brand}"

    @property
    def mlflow_reader(self) -> str:
        """The brand's read-only MLflow user (serving); password ``MLFLOW_READER_PASSWORD``."""
        return f"brand-{self.brand}-reader"

    @property
    def dask_scheduler_address(self) -> str:
        """The scheduler Service the Dask operator creates for ``dask_cluster``."""
        return f"tcp://{self.dask_cluster}-scheduler.{self.namespace}.svc.cluster.local:8786"

    def secret_name(self, secret: BrandSecret, suffix: str) -> str:
        """``brand-<brand>-<purpose>-<suffix>``: the Key Vault name of one of the brand's secrets.

        Key Vault keeps a deleted secret's name for the retention period, and with purge
        protection nobody can free it sooner; a fixed name would make a removed and re-added
        brand fail to create its secrets. The suffix is drawn when the brand is created, so
        a re-added brand gets fresh names while an update keeps them.
        """
        return f"brand-{self.brand}-{secret}-{suffix}"

    def role_assignment_name(self, role: str, subscription_id: str) -> str:
        """A GUID stable for this subscription, brand, environment and role.

        Role assignment names must be unique across the tenant, and the same stack may be
        deployed to several subscriptions of one tenant, so the subscription is part of it.
        """
        if not subscription_id:
            raise ValueError(f"brand {self.brand!r}: role {role!r} needs the subscription id")
        key = f"{subscription_id.lower()}/{self.environment}/{self.brand}/{role}"
        return str(uuid.uuid5(_ROLE_ASSIGNMENT_NAMESPACE, key))

    def limited(self) -> dict[str, str]:
        """Every name that has a limit in ``NAME_LIMITS``, keyed like it; secret names with
        the longest suffix they can get."""
        derived = {
            field.name: getattr(self, field.name)
            for field in fields(self)
            if field.name in NAME_LIMITS
        }
        for secret in BrandSecret:
            derived[f"{secret.name.lower()}_secret"] = self.secret_name(
                secret, _LONGEST_SECRET_SUFFIX
            )
        return derived


def brand_names(brand: str, environment: str) -> BrandNames:
    """Derive and check every name of ``brand`` in ``environment``.

    The lake container is ``brand-<name>`` rather than ``<name>`` so that no brand can
    take the environment's own containers (``mlflow``) by choosing that name.
    """
    names = BrandNames(
        brand=brand,
        environment=environment,
        namespace=f"brand-{brand}",
        service="ranking",
        deployment="ranking",
        service_account="ranking",
        training_service_account="training",
        cron_job="training",
        dask_cluster="training-dask",
        secret_provider_class="ranking-api-key",  # noqa: S106 - a name, not a secret
        training_secret_provider_class="training-mlflow",  # noqa: S106 - a name
        mlflow_access_job=f"mlflow-access-{brand}",
        ingress="ranking",
        identity=f"id-recplat-{environment}-{brand}",
        service_identity=f"id-recplat-{environment}-{brand}-ranking",
        service_federation=f"fic-{brand}-ranking",
        training_federation=f"fic-{brand}-training",
        lake_container=f"brand-{brand}",
        rule_group=f"recplat-{environment}-{brand}-slo",
    )
    for field_name, value in names.limited().items():
        try:
            NAME_LIMITS[field_name].check(field_name, value)
        except ValueError as error:
            raise ValueError(
                f"brand {brand!r}: {error}; choose a shorter or simpler name"
            ) from None
    return names


def label_value(text: str) -> str:
    """``text`` made into a valid Kubernetes label value (63 characters, no ``@``).

    Owners are email addresses, which labels cannot hold; the full value goes into an
    annotation and this readable, unique-enough form into the label used for selection.
    """
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", text).strip("_.-")
    if len(cleaned) > 63:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[:54].rstrip('_.-')}-{digest}"
    if not _LABEL_VALUE.fullmatch(cleaned):
        raise ValueError(f"cannot make a Kubernetes label value from {text!r}")
    return cleaned
