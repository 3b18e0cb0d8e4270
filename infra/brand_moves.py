"""Where a brand's resources lived before ``BrandStack`` was split into components.

Until issue 17 every brand resource was a direct child of its ``BrandStack``. A URN
spells the types of a resource's ancestors, so parenting a resource to a new component
(``BrandIdentity``, ``RankingService``...) gives it a new URN, and without an alias
``pulumi up`` would delete the deployed resource and create it again (a new identity, a
new API key, a namespace emptied). Each component therefore gives its children an alias
to their former parent, the ``BrandStack``: the engine finds them under the old URN and
moves them. ``recplat plan --diff`` shows such resources as "moved (alias)".
"""

from __future__ import annotations

from typing import Any

import pulumi


def child_options(
    component: pulumi.Resource, moved_from: pulumi.Resource | None, **options: Any
) -> pulumi.ResourceOptions:
    """Options for a child of ``component`` that used to be a child of ``moved_from``."""
    aliases = [pulumi.Alias(parent=moved_from)] if moved_from is not None else None
    return pulumi.ResourceOptions(parent=component, aliases=aliases, **options)
