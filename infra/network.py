"""The environment's network: VNet, subnets, NSGs and the private DNS zones of private endpoints.

Subnets are separate ``Subnet`` resources rather than inline in the VNet, so adding
one never rewrites the others. Private DNS zones exist only when private endpoints
are on; each is linked to the VNet so pods resolve ``*.privatelink.*`` to private IPs.

The node subnet's NSG is the one AKS does not manage: a load balancer's traffic passes
it with the client's source address, so Azure's default ``DenyAllInBound`` drops
Internet clients of a public ingress unless a rule here lets HTTPS in. An internal
ingress needs nothing more than the default ``AllowVnetInBound``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network, privatedns

# Private endpoint sub-resource (group id) -> the private DNS zone Azure expects for it.
PRIVATE_DNS_ZONES = {
    "blob": "privatelink.blob.core.windows.net",
    "dfs": "privatelink.dfs.core.windows.net",
    "vault": "privatelink.vaultcore.azure.net",
    "registry": "privatelink.azurecr.io",
}
# Service endpoints let the node subnet through the lake and vault firewalls in stacks
# without private endpoints (dev); with private endpoints they are harmless.
_NODE_SERVICE_ENDPOINTS = ("Microsoft.Storage", "Microsoft.KeyVault")
# The brand APIs' edge serves HTTPS only (infra/ingress_edge.py); nothing else is public.
INGRESS_PORT = "443"


@dataclass(frozen=True)
class NetworkArgs:
    """Inputs of ``Network``."""

    resource_group_name: pulumi.Input[str]
    location: str
    vnet_name: str
    address_space: str
    nodes_subnet: str
    endpoints_subnet: str
    database_subnet: str
    private_endpoints: bool
    database_dns_zone: str
    """Zone of the VNet-integrated PostgreSQL server (``<name>.private.postgres...``)."""
    tags: dict[str, str]
    public_ingress: bool = False
    """The ingress edge has a public load balancer: let Internet HTTPS reach the nodes."""


class Network(pulumi.ComponentResource):
    """VNet with node, private-endpoint and PostgreSQL subnets, NSGs and private DNS."""

    vnet_id: pulumi.Output[str]
    nodes_subnet_id: pulumi.Output[str]
    endpoints_subnet_id: pulumi.Output[str]
    database_subnet_id: pulumi.Output[str]
    dns_zone_ids: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:network:Network", name, None, opts)
        vnet = network.VirtualNetwork(
            f"{name}-vnet",
            virtual_network_name=args.vnet_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[args.address_space]),
            tags=args.tags,
            # Subnets are managed as their own resources; listing none here would delete them.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]),
        )
        nodes, endpoints, database = self._subnets(name, args, vnet)
        self.dns_zone_ids = (
            self._private_dns_zones(name, args, vnet) if args.private_endpoints else {}
        )

        self.vnet_id = vnet.id
        self.nodes_subnet_id = nodes.id
        self.endpoints_subnet_id = endpoints.id
        self.database_subnet_id = database.id
        self.register_outputs(
            {
                "vnetId": self.vnet_id,
                "nodesSubnetId": self.nodes_subnet_id,
                "endpointsSubnetId": self.endpoints_subnet_id,
                "databaseSubnetId": self.database_subnet_id,
            }
        )

    def _subnets(
        self, name: str, args: NetworkArgs, vnet: network.VirtualNetwork
    ) -> tuple[network.Subnet, network.Subnet, network.Subnet]:
        """The node, private-endpoint and PostgreSQL subnets, each with its own NSG."""
        rg = args.resource_group_name
        nodes_nsg = self._nsg(name, "nodes", args)
        endpoints_nsg = self._nsg(name, "endpoints", args)
        database_nsg = self._nsg(name, "database", args)
        nodes = network.Subnet(
            f"{name}-nodes",
            subnet_name="nodes",
            resource_group_name=rg,
            virtual_network_name=vnet.name,
            address_prefix=args.nodes_subnet,
            network_security_group=network.NetworkSecurityGroupArgs(id=nodes_nsg.id),
            service_endpoints=[
                network.ServiceEndpointPropertiesFormatArgs(service=service)
                for service in _NODE_SERVICE_ENDPOINTS
            ],
            # No implicit outbound internet: AKS egress goes through its load balancer.
            default_outbound_access=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Azure serialises subnet writes on one VNet; chaining avoids "AnotherOperationInProgress".
        endpoints = network.Subnet(
            f"{name}-endpoints",
            subnet_name="private-endpoints",
            resource_group_name=rg,
            virtual_network_name=vnet.name,
            address_prefix=args.endpoints_subnet,
            network_security_group=network.NetworkSecurityGroupArgs(id=endpoints_nsg.id),
            private_endpoint_network_policies="Enabled",
            default_outbound_access=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[nodes]),
        )
        database = network.Subnet(
            f"{name}-database",
            subnet_name="postgres",
            resource_group_name=rg,
            virtual_network_name=vnet.name,
            address_prefix=args.database_subnet,
            network_security_group=network.NetworkSecurityGroupArgs(id=database_nsg.id),
            delegations=[
                network.DelegationArgs(
                    name="postgres-flexible-server",
                    service_name="Microsoft.DBforPostgreSQL/flexibleServers",
                )
            ],
            default_outbound_access=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[endpoints]),
        )
        return nodes, endpoints, database

    def _private_dns_zones(
        self, name: str, args: NetworkArgs, vnet: network.VirtualNetwork
    ) -> dict[str, pulumi.Output[str]]:
        """One private DNS zone per private endpoint group id (and PostgreSQL), linked to the
        VNet; their ids by group id."""
        zone_ids: dict[str, pulumi.Output[str]] = {}
        zones = {**PRIVATE_DNS_ZONES, "postgres": args.database_dns_zone}
        for group, zone_name in zones.items():
            zone = privatedns.PrivateZone(
                f"{name}-dns-{group}",
                private_zone_name=zone_name,
                resource_group_name=args.resource_group_name,
                location="global",
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            privatedns.VirtualNetworkLink(
                f"{name}-dns-{group}-link",
                virtual_network_link_name=f"{args.vnet_name}-link",
                private_zone_name=zone.name,
                resource_group_name=args.resource_group_name,
                location="global",
                virtual_network=privatedns.SubResourceArgs(id=vnet.id),
                registration_enabled=False,
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            zone_ids[group] = zone.id
        return zone_ids

    def _nsg(self, name: str, purpose: str, args: NetworkArgs) -> network.NetworkSecurityGroup:
        """An NSG for one subnet: Internet traffic is denied explicitly, except HTTPS to the
        nodes when the ingress is public (the load balancer keeps the client's address)."""
        rules = [
            network.SecurityRuleArgs(
                name="deny-internet-inbound",
                priority=4000,
                direction="Inbound",
                access="Deny",
                protocol="*",
                source_address_prefix="Internet",
                source_port_range="*",
                destination_address_prefix="*",
                destination_port_range="*",
            )
        ]
        if purpose == "nodes" and args.public_ingress:
            # The destination is the load balancer's public frontend (AKS enables floating
            # IP), which is allocated later; nodes have no public IPs of their own, so the
            # load balancer is the only way in from the Internet.
            rules.insert(
                0,
                network.SecurityRuleArgs(
                    name="allow-internet-https-to-ingress",
                    priority=1000,
                    direction="Inbound",
                    access="Allow",
                    protocol="Tcp",
                    source_address_prefix="Internet",
                    source_port_range="*",
                    destination_address_prefix="*",
                    destination_port_range=INGRESS_PORT,
                ),
            )
        return network.NetworkSecurityGroup(
            f"{name}-nsg-{purpose}",
            network_security_group_name=f"nsg-{args.vnet_name}-{purpose}",
            resource_group_name=args.resource_group_name,
            location=args.location,
            security_rules=rules,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
