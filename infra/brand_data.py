"""BrandData: what a brand keeps in the environment's shared stores.

Its own container in the environment's lake account, and its secrets in the environment's
Key Vault: the API key (callers of the service) and the passwords of the brand's two
MLflow users (the writer for training, the reader for serving). Secrets live in Key Vault
only; pods read them as files. ``BrandIdentity`` grants the brand's workloads access to
exactly these.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure_native
import pulumi_random as random

from infra.brand_inputs import BrandPlatform
from infra.brand_moves import child_options
from infra.brand_names import SECRET_SUFFIX_BYTES, BrandNames, BrandSecret

API_KEY_LENGTH = 48
MLFLOW_PASSWORD_LENGTH = 40
SECRET_LENGTHS = {
    BrandSecret.API_KEY: API_KEY_LENGTH,
    BrandSecret.MLFLOW_PASSWORD: MLFLOW_PASSWORD_LENGTH,
    BrandSecret.MLFLOW_READER_PASSWORD: MLFLOW_PASSWORD_LENGTH,
}


@dataclass(frozen=True)
class BrandDataArgs:
    """The brand's names and owner tags, and the environment's lake account and vault."""

    names: BrandNames
    cost_center: str
    """Containers take no tags; their metadata carries the brand and its cost center."""
    tags: dict[str, str]
    platform: BrandPlatform
    moved_from: pulumi.Resource | None = None
    """The children's former parent (``infra.brand_moves``)."""


class BrandData(pulumi.ComponentResource):
    """The brand's lake container and its Key Vault secrets (names drawn with a suffix)."""

    container: azure_native.storage.BlobContainer
    secrets: dict[BrandSecret, azure_native.keyvault.Secret]
    secret_names: dict[BrandSecret, pulumi.Output[str]]
    """Key Vault name of each secret (``BrandNames.secret_name`` with the drawn suffix)."""
    container_scope: pulumi.Output[str]
    """The container's ARM id: the scope of the brand's lake grants."""
    lake_uri: pulumi.Output[str]
    """``abfs://`` URI of the container, as the workloads open it."""

    def __init__(
        self, name: str, args: BrandDataArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:brand:BrandData", name, None, opts)
        names, platform = args.names, args.platform
        child = child_options(self, args.moved_from)
        self.container = azure_native.storage.BlobContainer(
            f"{names.brand}-lake",
            container_name=names.lake_container,
            account_name=platform.storage_account_name,
            resource_group_name=platform.resource_group_name,
            public_access=azure_native.storage.PublicAccess.NONE,
            # Containers take no tags; metadata carries the same facts.
            metadata={"brand": names.brand, "cost_center": args.cost_center},
            opts=child,
        )
        self._create_secrets(args, child)
        self.container_scope = pulumi.Output.concat(
            platform.storage_account_id, "/blobServices/default/containers/", names.lake_container
        )
        self.lake_uri = pulumi.Output.concat(
            "abfs://", names.lake_container, "@", platform.storage_account_name,
            ".dfs.core.windows.net/",
        )  # fmt: skip
        self._key_vault_id = platform.key_vault_id
        self.register_outputs(
            {"lakeUri": self.lake_uri, "apiKeySecretName": self.secret_names[BrandSecret.API_KEY]}
        )

    def _create_secrets(self, args: BrandDataArgs, child: pulumi.ResourceOptions) -> None:
        # Secret names end in a suffix drawn with the brand: Key Vault keeps a deleted
        # secret's name for its retention period (unpurgeable under purge protection), so a
        # brand removed and added again needs names it never had.
        names, platform = args.names, args.platform
        suffix = random.RandomId(
            f"{names.brand}-secret-suffix", byte_length=SECRET_SUFFIX_BYTES, opts=child
        )
        self.secret_names = {
            secret: suffix.hex.apply(functools.partial(names.secret_name, secret))
            for secret in BrandSecret
        }
        self.secrets = {}
        for secret, length in SECRET_LENGTHS.items():
            value = random.RandomPassword(
                f"{names.brand}-{secret}", length=length, special=False, opts=child
            )
            self.secrets[secret] = azure_native.keyvault.Secret(
                f"{names.brand}-{secret}-secret",
                secret_name=self.secret_names[secret],
                vault_name=platform.key_vault_name,
                resource_group_name=platform.resource_group_name,
                properties=azure_native.keyvault.SecretPropertiesArgs(
                    value=value.result, content_type="text/plain"
                ),
                tags=args.tags,
                opts=child,
            )

    def secret_scope(self, secret: BrandSecret) -> pulumi.Output[str]:
        """The ARM id of one of the brand's secrets: the scope of a grant to read it."""
        return pulumi.Output.concat(self._key_vault_id, "/secrets/", self.secret_names[secret])

    def secret_version(self, secret: BrandSecret) -> pulumi.Output[str]:
        """The secret's URI with its current version: changes when the value is rotated."""
        return self.secrets[secret].properties.apply(
            lambda properties: properties.secret_uri_with_version
        )
