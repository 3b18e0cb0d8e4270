"""Built-in Azure role definitions the environment assigns, and how to assign them.

Every assignment passes ``principal_type`` explicitly: azure-native defaults it to
``User``, which makes assignments to managed identities fail intermittently while
Entra replicates the new service principal.

An assignment's name (a GUID, unique in the tenant) is derived from what Azure keys it on:
scope, principal and role (``role_assignment_name``). A name fixed per purpose breaks as
soon as the principal changes: whoever runs ``pulumi up`` (a person, then CI) or an
identity that is re-created gets a new principal, and Azure refuses to point an existing
assignment at another one (``RoleAssignmentUpdateNotPermitted``).
"""

from __future__ import annotations

import uuid

import pulumi
from pulumi_azure_native import authorization

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
AKS_RBAC_CLUSTER_ADMIN = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
MONITORING_DATA_READER = "b0d8363b-8ddd-447d-831f-62ca05bff136"
GRAFANA_ADMIN = "22926164-76b3-42b3-bc55-97df8dab3e41"

# Namespace of the assignment GUIDs this program derives (any fixed UUID would do).
_ASSIGNMENT_NAMESPACE = uuid.UUID("7b0a5f0e-3f5d-4e8c-9a55-5f2f3c8a1d42")


def role_definition_id(subscription_id: str, role: str) -> str:
    """The subscription-scoped id of built-in role ``role``."""
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    )


def role_assignment_name(scope: str, principal_id: str, role: str) -> str:
    """The assignment GUID for ``role`` granted to ``principal_id`` on ``scope``.

    The same triple always gets the same name, so a re-run finds its assignment; another
    principal (the CI service principal after a person) gets its own. Case is ignored, as
    ARM ignores it in resource ids; ``role`` is the role definition's GUID or full id.
    """
    if not (scope and principal_id and role):
        raise ValueError(
            f"role assignment needs a scope, a principal and a role, got scope={scope!r}, "
            f"principal={principal_id!r}, role={role!r}"
        )
    role_guid = role.rstrip("/").rsplit("/", 1)[-1]
    key = f"{scope.rstrip('/').lower()}|{principal_id.lower()}|{role_guid.lower()}"
    return str(uuid.uuid5(_ASSIGNMENT_NAMESPACE, key))


def assign_role(
    name: str,
    *,
    subscription_id: str,
    role: str,
    principal_id: pulumi.Input[str],
    principal_type: str,
    scope: pulumi.Input[str],
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource] | None = None,
) -> authorization.RoleAssignment:
    """Grant ``role`` on ``scope`` to ``principal_id``, named by ``role_assignment_name``."""
    assignment_name = pulumi.Output.all(scope, principal_id).apply(
        lambda parts: role_assignment_name(str(parts[0]), str(parts[1]), role)
    )
    return authorization.RoleAssignment(
        name,
        role_assignment_name=assignment_name,
        role_definition_id=role_definition_id(subscription_id, role),
        principal_id=principal_id,
        principal_type=principal_type,
        scope=scope,
        # A new name for an unchanged (scope, principal, role) would be refused as a
        # duplicate (RoleAssignmentExists), e.g. for assignments a failed first run left
        # under their old names: the old assignment goes before its replacement comes.
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=depends_on or [], delete_before_replace=True
        ),
    )
