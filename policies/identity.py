"""Policies for identities and access: role assignments and the container registry's own logins."""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs, Severity

from policies.context import is_brand_resource, is_true
from policies.rule import Violations, resource_policy, setting, show

ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
REGISTRY = "azure-native:containerregistry:Registry"

# Built-in roles that grant write or access-management over everything in scope.
PRIVILEGED_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
}

# A brand identity may only hold roles on its own container or its own Key Vault secrets.
BRAND_SCOPE_MARKERS = ("/blobServices/default/containers/", "/secrets/")


@resource_policy(
    name="role-assignment-principal-type",
    description="Role assignments name their principalType (the API defaults to User).",
    resource_types=[ROLE_ASSIGNMENT],
    severity=Severity.MEDIUM,
)
def role_assignment_principal_type(args: ResourceValidationArgs, report: Violations) -> None:
    # Without it ARM assumes User and a fresh managed identity fails replication checks.
    value = args.props.get("principalType")
    if not value:
        report(
            f"{setting('principalType', value)}; set it to ServicePrincipal for managed identities"
        )


@resource_policy(
    name="role-assignment-no-privileged-role",
    description="Workload identities never get Owner, Contributor or access-management roles.",
    resource_types=[ROLE_ASSIGNMENT],
    severity=Severity.CRITICAL,
)
def role_assignment_no_privileged_role(args: ResourceValidationArgs, report: Violations) -> None:
    principal_type = args.props.get("principalType")
    if principal_type not in (None, "ServicePrincipal"):
        return
    role_id = str(args.props.get("roleDefinitionId") or "").rsplit("/", 1)[-1].lower()
    role = PRIVILEGED_ROLES.get(role_id)
    if role:
        report(
            f"grants {role} to a workload identity; grant a data-plane role such as "
            "Storage Blob Data Contributor or Key Vault Secrets User on the narrowest scope"
        )


@resource_policy(
    name="role-assignment-brand-scope",
    description="Brand identities hold roles only on their own lake container or vault secrets.",
    resource_types=[ROLE_ASSIGNMENT],
    severity=Severity.HIGH,
)
def role_assignment_brand_scope(args: ResourceValidationArgs, report: Violations) -> None:
    if not is_brand_resource(args.urn, args.props):
        return
    scope = str(args.props.get("scope") or "")
    if not any(marker in scope for marker in BRAND_SCOPE_MARKERS):
        report(
            f"scopes a brand role assignment to {show(scope or None)}; scope it to the brand's "
            "container (.../blobServices/default/containers/<brand>) or its Key Vault secrets "
            "(.../vaults/<vault>/secrets/<name>)"
        )


@resource_policy(
    name="acr-no-admin-or-anonymous",
    description="The registry has no admin user and no anonymous pull; AKS pulls by identity.",
    resource_types=[REGISTRY],
    severity=Severity.HIGH,
    benchmark="CKV_AZURE_137",
)
def acr_no_admin_or_anonymous(args: ResourceValidationArgs, report: Violations) -> None:
    for path in ("adminUserEnabled", "anonymousPullEnabled"):
        if is_true(args.props.get(path)):
            report(f"sets {path}=true; set it to false and grant AcrPull to the kubelet identity")
