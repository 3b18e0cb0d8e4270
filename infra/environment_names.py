"""The names of an environment's Azure resources, globally unique ones included.

Storage accounts, Key Vaults and registries share one global namespace each, so
their names carry a short hash of subscription, project and stack: the same
stack in the same subscription always gets the same names (stable across runs),
while another subscription deploying the same project never collides. Each
derived name is checked against its resource's limits here, at plan time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from infra.config import PROJECT

_LIMITS = {
    # name: (pattern, min length, max length)
    "storage_account": (r"[a-z0-9]+", 3, 24),
    "key_vault": (r"[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9]", 3, 24),
    "registry": (r"[a-zA-Z0-9]+", 5, 50),
    "database_server": (r"[a-z0-9][a-z0-9-]*[a-z0-9]", 3, 63),
    "grafana": (r"[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9]", 2, 23),
    "cluster_dns_prefix": (r"[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]", 1, 54),
}


@dataclass(frozen=True)
class EnvironmentNames:
    """Physical names of the environment's resources in one stack."""

    stack: str
    suffix: str
    resource_group: str
    virtual_network: str
    cluster: str
    cluster_dns_prefix: str
    storage_account: str
    key_vault: str
    registry: str
    database_server: str
    log_analytics: str
    monitor_workspace: str
    grafana: str

    @property
    def registry_login_server(self) -> str:
        """The ACR login server, known before the registry exists."""
        return f"{self.registry.lower()}.azurecr.io"


def _check(kind: str, value: str) -> str:
    pattern, shortest, longest = _LIMITS[kind]
    if not shortest <= len(value) <= longest or not re.fullmatch(pattern, value):
        raise ValueError(
            f"derived {kind} name {value!r} breaks Azure's limit ({shortest}-{longest} "
            f"characters matching {pattern}); use a shorter stack name"
        )
    return value


def environment_names(subscription_id: str, stack: str) -> EnvironmentNames:
    """Derive every environment name for ``stack`` in ``subscription_id``."""
    digest = hashlib.sha256(f"{subscription_id.lower()}/{PROJECT}/{stack}".encode()).hexdigest()
    suffix = digest[:6]
    return EnvironmentNames(
        stack=stack,
        suffix=suffix,
        resource_group=f"rg-{PROJECT}-{stack}",
        virtual_network=f"vnet-{PROJECT}-{stack}",
        cluster=f"aks-{PROJECT}-{stack}",
        cluster_dns_prefix=_check("cluster_dns_prefix", f"{PROJECT}-{stack}-{suffix}"),
        storage_account=_check("storage_account", f"st{PROJECT}{stack}{suffix}"),
        key_vault=_check("key_vault", f"kv-{PROJECT}-{stack}-{suffix}"),
        registry=_check("registry", f"acr{PROJECT}{stack}{suffix}"),
        database_server=_check("database_server", f"psql-{PROJECT}-{stack}-{suffix}"),
        log_analytics=f"log-{PROJECT}-{stack}",
        monitor_workspace=f"amw-{PROJECT}-{stack}",
        grafana=_check("grafana", f"grafana-{stack}-{suffix}"),
    )
