"""PostgreSQL is reachable from the VNet only, in every stack: no firewall rule admits Azure.

A ``0.0.0.0``-``0.0.0.0`` firewall rule ("allow Azure services") admits every Azure
tenant's outbound addresses, not only this cluster's egress, so dev gets private
access (VNet integration) too.
"""

from __future__ import annotations

import pytest

from policies.offline import evaluate_stack
from recplat.plan import Plan
from tests.infra.plan_queries import lookup, one

STACKS = ["dev", "prod"]
SERVER = "azure-native:dbforpostgresql:Server"
FIREWALL_RULE = "azure-native:dbforpostgresql:FirewallRule"


@pytest.mark.parametrize("stack", STACKS)
def test_postgres_has_private_access_and_no_firewall_rule(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    plan = environment_plans[stack]
    server = one(plan, SERVER)
    props, urn = server["inputs"], server["urn"]
    assert lookup(props, "network.publicNetworkAccess") == "Disabled", urn
    assert str(lookup(props, "network.delegatedSubnetResourceId")).endswith("/subnets/postgres")
    zone = str(lookup(props, "network.privateDnsZoneArmResourceId"))
    assert zone.endswith(".private.postgres.database.azure.com"), (urn, zone)
    assert [r["urn"] for r in plan.of_type(FIREWALL_RULE)] == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_database_private_dns_zone_is_linked_to_the_environment_vnet(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    plan = environment_plans[stack]
    zone_id = lookup(one(plan, SERVER)["inputs"], "network.privateDnsZoneArmResourceId")
    zone_name = str(zone_id).rsplit("/", 1)[-1]
    links = [
        r
        for r in plan.of_type("azure-native:privatedns:VirtualNetworkLink")
        if r["inputs"]["privateZoneName"] == zone_name
    ]
    assert len(links) == 1, f"stack {stack}: zone {zone_name} has links {links}"
    assert "/virtualNetworks/" in links[0]["inputs"]["virtualNetwork"]["id"]


@pytest.mark.parametrize("stack", STACKS)
def test_an_allow_azure_services_rule_is_a_mandatory_policy_violation(stack: str) -> None:
    rule = {
        "urn": f"urn:pulumi:{stack}::recplat::azure-native:dbforpostgresql:FirewallRule::azure",
        "type": FIREWALL_RULE,
        "name": "azure",
        "inputs": {"startIpAddress": "0.0.0.0", "endIpAddress": "0.0.0.0"},  # noqa: S104
        "parent": None,
    }
    report = evaluate_stack([rule], stack)
    assert [v.policy for v in report.mandatory] == ["postgres-no-open-firewall"], report.render()
