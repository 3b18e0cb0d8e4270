"""Opening a brand's lake from its URI: `file://...` locally, `abfs://container/...` on Azure.

All storage goes through fsspec, so one code path serves both. On Azure, adlfs authenticates
with the workload identity (DefaultAzureCredential); against Azurite it takes the connection
string from `AZURE_STORAGE_CONNECTION_STRING`. No key ever appears in a URI or in config.
"""

from __future__ import annotations

import os
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
    options: dict[str, str] = {}
    connection_string = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if uri.startswith(("abfs://", "az://")) and connection_string:
        # Passed explicitly so fsspec's instance cache keys on it: a process that is handed a
        # new connection string (a restarted Azurite, another test) must not reuse the old one.
        options["connection_string"] = connection_string
    fs, root = fsspec.core.url_to_fs(uri, **options)
    return fs, root.rstrip("/")
