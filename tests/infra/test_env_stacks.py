"""dev and prod differ exactly where their stack files say: zones, HA, private endpoints, SKUs."""

from __future__ import annotations

from collections import Counter

import pytest

from recplat.plan import Plan
from tests.infra.plan_queries import lookup, one, stack_file

CLUSTER = "azure-native:containerservice:ManagedCluster"
USER_POOL = "azure-native:containerservice:AgentPool"
POSTGRES = "azure-native:dbforpostgresql:Server"
STORAGE = "azure-native:storage:StorageAccount"
VAULT = "azure-native:keyvault:Vault"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_node_pools_use_the_configured_zones_sizes_and_counts(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    plan, cluster_config = environment_plans[stack], stack_file(stack)["recplat:cluster"]
    cluster = one(plan, CLUSTER)
    system = cluster["inputs"]["agentPoolProfiles"][0]
    user = one(plan, USER_POOL)["inputs"]
    zones = cluster_config["zones"] or None
    assert system.get("availabilityZones") == zones, cluster["urn"]
    assert user.get("availabilityZones") == zones, one(plan, USER_POOL)["urn"]
    assert system["vmSize"] == cluster_config["systemPool"]["vmSize"], cluster["urn"]
    assert (user["vmSize"], user["minCount"], user["maxCount"]) == (
        cluster_config["userPool"]["vmSize"],
        cluster_config["userPool"]["minCount"],
        cluster_config["userPool"]["maxCount"],
    ), one(plan, USER_POOL)["urn"]
    assert cluster["inputs"]["sku"]["tier"] == cluster_config["tier"], cluster["urn"]


def test_prod_is_zonal_and_standard_tier_while_dev_is_neither(
    environment_plans: dict[str, Plan],
) -> None:
    dev, prod = (one(environment_plans[s], CLUSTER) for s in ("dev", "prod"))
    assert prod["inputs"]["sku"]["tier"] == "Standard", prod["urn"]
    assert prod["inputs"]["agentPoolProfiles"][0]["availabilityZones"] == ["1", "2", "3"]
    assert dev["inputs"]["sku"]["tier"] == "Free", dev["urn"]
    assert "availabilityZones" not in dev["inputs"]["agentPoolProfiles"][0], dev["urn"]


def test_database_ha_backup_and_sku_follow_the_stack(environment_plans: dict[str, Plan]) -> None:
    dev, prod = (one(environment_plans[s], POSTGRES) for s in ("dev", "prod"))
    assert lookup(prod["inputs"], "highAvailability.mode") == "ZoneRedundant", prod["urn"]
    assert lookup(prod["inputs"], "backup.geoRedundantBackup") == "Enabled", prod["urn"]
    assert lookup(prod["inputs"], "sku.tier") == "GeneralPurpose", prod["urn"]
    assert lookup(dev["inputs"], "highAvailability.mode") == "Disabled", dev["urn"]
    assert lookup(dev["inputs"], "backup.geoRedundantBackup") == "Disabled", dev["urn"]
    assert lookup(dev["inputs"], "sku") == {"name": "Standard_B1ms", "tier": "Burstable"}, dev[
        "urn"
    ]


def test_private_endpoints_exist_only_in_prod(environment_plans: dict[str, Plan]) -> None:
    groups = Counter(
        endpoint["inputs"]["privateLinkServiceConnections"][0]["groupIds"][0]
        for endpoint in environment_plans["prod"].of_type(PRIVATE_ENDPOINT)
    )
    assert groups == {"blob": 1, "dfs": 1, "vault": 1, "registry": 1}
    assert environment_plans["dev"].of_type(PRIVATE_ENDPOINT) == []


@pytest.mark.parametrize(("stack", "access"), [("dev", "Enabled"), ("prod", "Disabled")])
def test_public_network_access_follows_private_endpoints(
    environment_plans: dict[str, Plan], stack: str, access: str
) -> None:
    plan = environment_plans[stack]
    for token, path in (
        (STORAGE, "publicNetworkAccess"),
        (VAULT, "properties.publicNetworkAccess"),
    ):
        resource = one(plan, token)
        assert lookup(resource["inputs"], path) == access, f"{resource['urn']}: {path}"
    # PostgreSQL is private in every stack (tests/infra/test_database_access.py).
    postgres = one(plan, POSTGRES)
    assert lookup(postgres["inputs"], "network.publicNetworkAccess") == "Disabled", postgres["urn"]


def test_storage_skus_follow_the_stack(environment_plans: dict[str, Plan]) -> None:
    # The registry's SKU and access are the registry project's (test_first_deploy_images.py).
    for stack, storage_sku in (("dev", "Standard_LRS"), ("prod", "Standard_ZRS")):
        storage = one(environment_plans[stack], STORAGE)
        assert storage["inputs"]["sku"]["name"] == storage_sku, storage["urn"]


def test_only_configured_differences_separate_the_stacks(
    environment_plans: dict[str, Plan],
) -> None:
    """The same resource types exist in both stacks, except the private-endpoint ones.

    PostgreSQL has private access in both (dev creates its own private DNS zone), so
    no type exists in dev only.
    """
    private_only = {
        PRIVATE_ENDPOINT,
        "azure-native:network:PrivateDnsZoneGroup",
        "kubernetes:policy/v1:PodDisruptionBudget",
    }
    dev_types = {r["type"] for r in environment_plans["dev"].resources}
    prod_types = {r["type"] for r in environment_plans["prod"].resources}
    assert prod_types - dev_types == private_only
    assert dev_types - prod_types == set()
