"""Every security property of the environment, asserted for each stack."""

from __future__ import annotations

import pytest

from infra.plan_mocks import PLACEHOLDER_SUBSCRIPTION
from infra.registry import registry_location
from recplat.plan import Plan
from tests.infra.plan_queries import lookup, one

STACKS = ["dev", "prod"]
ENV_TAGS = {"managed-by": "pulumi", "project": "recplat"}


@pytest.mark.parametrize("stack", STACKS)
def test_aks_is_entra_only_with_workload_identity_and_network_policy(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    cluster = one(environment_plans[stack], "azure-native:containerservice:ManagedCluster")
    props, urn = cluster["inputs"], cluster["urn"]
    expected = {
        "disableLocalAccounts": True,
        "enableRBAC": True,
        "aadProfile.managed": True,
        "aadProfile.enableAzureRBAC": True,
        "oidcIssuerProfile.enabled": True,
        "securityProfile.workloadIdentity.enabled": True,
        "networkProfile.networkPlugin": "azure",
        "networkProfile.networkPluginMode": "overlay",
        "networkProfile.networkPolicy": "cilium",
        "addonProfiles.azurepolicy.enabled": True,
        "addonProfiles.azureKeyvaultSecretsProvider.enabled": True,
        "addonProfiles.azureKeyvaultSecretsProvider.config.enableSecretRotation": "true",
        "addonProfiles.omsagent.enabled": True,
        "azureMonitorProfile.metrics.enabled": True,
        "autoUpgradeProfile.upgradeChannel": "patch",
    }
    for path, value in expected.items():
        assert lookup(props, path) == value, (
            f"{urn}: {path} is {lookup(props, path)!r}, want {value!r}"
        )
    assert "0.0.0.0/0" not in lookup(props, "apiServerAccessProfile.authorizedIPRanges"), urn
    assert props["agentPoolProfiles"][0]["enableNodePublicIP"] is False, urn


@pytest.mark.parametrize("stack", STACKS)
def test_aks_has_a_maintenance_window_for_auto_upgrades(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    window = one(environment_plans[stack], "azure-native:containerservice:MaintenanceConfiguration")
    assert window["inputs"]["configName"] == "aksManagedAutoUpgradeSchedule", window["urn"]
    assert window["inputs"]["maintenanceWindow"]["durationHours"] >= 4, window["urn"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_role_assignment_names_its_principal_type(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    for assignment in environment_plans[stack].of_type("azure-native:authorization:RoleAssignment"):
        assert assignment["inputs"].get("principalType"), f"{assignment['urn']}: no principalType"


@pytest.mark.parametrize("stack", STACKS)
def test_kubelet_identity_can_pull_from_the_registry_as_a_service_principal(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    # The registry itself is the registry project's (tests/infra/test_first_deploy_images.py).
    plan = environment_plans[stack]
    pull = one(plan, "azure-native:authorization:RoleAssignment", "kubelet-acrpull")
    assert pull["inputs"]["principalType"] == "ServicePrincipal", pull["urn"]
    assert pull["inputs"]["roleDefinitionId"].endswith("7f951dda-4ed3-4680-a7ca-43fe172d538d")
    assert pull["inputs"]["scope"] == registry_location(PLACEHOLDER_SUBSCRIPTION, stack).id


@pytest.mark.parametrize("stack", STACKS)
def test_lake_is_identity_only_tls12_and_deny_by_default(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    account = one(environment_plans[stack], "azure-native:storage:StorageAccount")
    props, urn = account["inputs"], account["urn"]
    assert props["isHnsEnabled"] is True, urn
    assert props["minimumTlsVersion"] == "TLS1_2", urn
    assert props["enableHttpsTrafficOnly"] is True, urn
    assert props["allowBlobPublicAccess"] is False, urn
    assert props["allowSharedKeyAccess"] is False, urn
    assert props["networkRuleSet"]["defaultAction"] == "Deny", urn
    service = one(environment_plans[stack], "azure-native:storage:BlobServiceProperties")
    assert service["inputs"]["deleteRetentionPolicy"]["enabled"] is True, service["urn"]


@pytest.mark.parametrize("stack", STACKS)
def test_mlflow_identity_writes_only_the_mlflow_container(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    plan = environment_plans[stack]
    writer = one(plan, "azure-native:authorization:RoleAssignment", "artifacts-writer")
    assert writer["inputs"]["scope"].endswith("/blobServices/default/containers/mlflow"), writer[
        "urn"
    ]
    assert writer["inputs"]["principalType"] == "ServicePrincipal", writer["urn"]
    readers = [
        r
        for r in plan.of_type("azure-native:authorization:RoleAssignment")
        if "mlflow-reads-" in r["name"]
    ]
    assert len(readers) == 3
    for reader in readers:
        assert "/secrets/mlflow-" in reader["inputs"]["scope"], (
            f"{reader['urn']} is not secret-scoped"
        )
    federation = one(plan, "azure-native:managedidentity:FederatedIdentityCredential")
    assert federation["inputs"]["subject"] == "system:serviceaccount:mlflow:mlflow-server"
    assert federation["inputs"]["issuer"].startswith("https://"), federation["urn"]


@pytest.mark.parametrize("stack", STACKS)
def test_vault_uses_rbac_soft_delete_and_purge_protection_in_prod(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    vault = one(environment_plans[stack], "azure-native:keyvault:Vault")
    props, urn = vault["inputs"]["properties"], vault["urn"]
    assert props["enableRbacAuthorization"] is True, urn
    assert props["enableSoftDelete"] is True, urn
    assert props["networkAcls"]["defaultAction"] == "Deny", urn
    assert props.get("enablePurgeProtection") is (True if stack == "prod" else None), urn


@pytest.mark.parametrize("stack", STACKS)
def test_database_uses_entra_auth_and_requires_tls(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    plan = environment_plans[stack]
    server = one(plan, "azure-native:dbforpostgresql:Server")
    assert lookup(server["inputs"], "authConfig.activeDirectoryAuth") == "Enabled", server["urn"]
    # require_secure_transport is on by default on a flexible server: nothing may turn it off
    # (policy postgres-tls-required), and no Configuration restates the default (ServerIsBusy).
    for setting in plan.of_type("azure-native:dbforpostgresql:Configuration"):
        assert setting["inputs"].get("configurationName") != "require_secure_transport", setting
    one(plan, "azure-native:dbforpostgresql:Database")


@pytest.mark.parametrize("stack", STACKS)
def test_mlflow_runs_hardened_inside_the_cluster_only(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    plan = environment_plans[stack]
    service = one(plan, "kubernetes:core/v1:Service")
    assert service["inputs"]["spec"]["type"] == "ClusterIP", service["urn"]
    deployment = one(plan, "kubernetes:apps/v1:Deployment")
    pod = deployment["inputs"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    security, urn = container["securityContext"], deployment["urn"]
    assert security["runAsNonRoot"] is True, urn
    assert security["readOnlyRootFilesystem"] is True, urn
    assert security["allowPrivilegeEscalation"] is False, urn
    assert security["capabilities"]["drop"] == ["ALL"], urn
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(container), urn
    assert set(container["resources"]) == {"requests", "limits"}, urn
    # The image's start script runs `mlflow server --app-name basic-auth` (tests/infra/
    # test_mlflow_access_job.py starts a server with it); the args may not switch the app.
    assert container["command"] == ["/opt/recplat/start-server.sh"], urn
    assert not any(arg.startswith("--app-name") for arg in container["args"]), urn
    assert container["args"][0] == "/mnt/secrets", urn
    assert any(arg.startswith("wasbs://mlflow@") for arg in container["args"]), urn
    assert (
        deployment["inputs"]["spec"]["template"]["metadata"]["labels"][
            "azure.workload.identity/use"
        ]
        == "true"
    ), urn
    assert not any("secretKeyRef" in str(env) for env in container.get("env", [])), urn


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_azure_resource_carries_the_environment_tags(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    import inspect

    import pulumi_azure_native

    tagged = 0
    for resource in environment_plans[stack].resources:
        token = resource["type"]
        if not token.startswith("azure-native:"):
            continue
        _, module, name = token.split(":")
        cls = getattr(getattr(pulumi_azure_native, module), name)
        if "tags" not in inspect.signature(cls._internal_init).parameters:
            continue
        tags = resource["inputs"].get("tags") or {}
        assert tags == {**ENV_TAGS, "environment": stack}, f"{resource['urn']} has tags {tags}"
        tagged += 1
    assert tagged > 20
