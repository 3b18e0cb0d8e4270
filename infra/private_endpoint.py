"""One private endpoint and its DNS zone group, for any component that exposes a PaaS service.

The DNS zone group makes Azure maintain the ``privatelink`` A record, so the service's
public name resolves to the private IP from inside the VNet.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network


@dataclass(frozen=True)
class PrivateEndpointArgs:
    """Where the endpoint goes and what it connects to."""

    resource_group_name: pulumi.Input[str]
    location: str
    subnet_id: pulumi.Input[str]
    service_id: pulumi.Input[str]
    group_id: str
    """Sub-resource of the service: ``blob``, ``dfs``, ``vault``, ``registry``."""
    dns_zone_id: pulumi.Input[str]
    tags: dict[str, str]


def private_endpoint(
    name: str, endpoint_name: str, args: PrivateEndpointArgs, parent: pulumi.Resource
) -> network.PrivateEndpoint:
    """Create a private endpoint named ``endpoint_name`` (logical ``name``) under ``parent``."""
    endpoint = network.PrivateEndpoint(
        name,
        private_endpoint_name=endpoint_name,
        resource_group_name=args.resource_group_name,
        location=args.location,
        subnet=network.SubnetArgs(id=args.subnet_id),
        private_link_service_connections=[
            network.PrivateLinkServiceConnectionArgs(
                name=endpoint_name,
                private_link_service_id=args.service_id,
                group_ids=[args.group_id],
            )
        ],
        tags=args.tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    network.PrivateDnsZoneGroup(
        f"{name}-dns",
        private_dns_zone_group_name="default",
        private_endpoint_name=endpoint.name,
        resource_group_name=args.resource_group_name,
        private_dns_zone_configs=[
            network.PrivateDnsZoneConfigArgs(
                name=args.group_id, private_dns_zone_id=args.dns_zone_id
            )
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return endpoint
