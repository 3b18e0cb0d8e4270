"""Opening a brand's lake from its URI: `file://...` locally, `abfs://container/...` on Azure.

All storage goes through fsspec, so one code path serves both. On Azure, adlfs authenticates
with the workload identity (DefaultAzureCredential); against Azurite it takes the connection
string from `AZURE_STORAGE_CONNECTION_STRING`. No key ever appears in a URI or in config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem


def open_lake(uri: str) -> tuple[AbstractFileSystem, str]:
    """The filesystem and root path of the lake at `uri` (the root need not exist yet)."""
    import fsspec

    if "://" not in uri:
        raise ValueError(
            f"lake URI {uri!r}: expected a URL such as file:///data/lake or abfs://container/path"
        )
    fs, root = fsspec.core.url_to_fs(uri)
    return fs, root.rstrip("/")
