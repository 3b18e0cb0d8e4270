"""Built-in Azure role definitions the environment assigns, and how to assign them.

Every assignment passes ``principal_type`` explicitly: azure-native defaults it to
``User``, which makes assignments to managed identities fail intermittently while
Entra replicates the new service principal.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
AKS_RBAC_CLUSTER_ADMIN = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
MONITORING_DATA_READER = "b0d8363b-8ddd-447d-831f-62ca05bff136"
GRAFANA_ADMIN = "22926164-76b3-42b3-bc55-97df8dab3e41"


def role_definition_id(subscription_id: str, role: str) -> str:
    """The subscription-scoped id of built-in role ``role``."""
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    )


def assign_role(
    name: str,
    *,
    assignment_name: str,
    subscription_id: str,
    role: str,
    principal_id: pulumi.Input[str],
    principal_type: str,
    scope: pulumi.Input[str],
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource] | None = None,
) -> authorization.RoleAssignment:
    """Grant ``role`` on ``scope`` to ``principal_id`` with a stable assignment GUID."""
    return authorization.RoleAssignment(
        name,
        role_assignment_name=assignment_name,
        role_definition_id=role_definition_id(subscription_id, role),
        principal_id=principal_id,
        principal_type=principal_type,
        scope=scope,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on or []),
    )
