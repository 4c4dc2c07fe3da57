"""Neutron v2.0 response bodies: every key always present (lists never null), `tenant_id` beside
`project_id`, admin-only provider and binding attributes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kumo.network.models import Network, Port, SecurityGroup, SecurityGroupRule, Subnet

EXTENSIONS = (  # (alias, name, description): only what kumo implements
    ("security-group", "security-group", "Security groups and their rules on ports."),
    ("binding", "Port Binding", "The host, VNIC and VIF type a port is bound with."),
    ("port-security", "Port Security", "port_security_enabled on networks and ports."),
    ("project-id", "project_id field enabled", "Resources carry project_id."),
    ("standard-attr-description", "standard-attr-description", "Resources carry a description."),
    ("standard-attr-timestamp", "Resource timestamps", "Resources carry created_at and updated_at."),
    ("standard-attr-revisions", "Resource revision numbers", "Resources carry a revision_number."),
    ("network-mtu", "Network MTU", "Networks carry their MTU."),
    ("provider", "Provider Network", "Local, flat and VLAN networks (admin)."),
    ("external-net", "Neutron external network", "router:external (admin): its host is the gateway."),
    ("quotas", "Quota management support", "Per-project limits of networking resources."),
    ("quota_details", "Quota details management support", "Limits with their usage."),
)


def _time(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _standard(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "revision_number": row.revision_number,
        "created_at": _time(row.created_at),
        "updated_at": _time(row.updated_at),
    }


def network(row: Network, subnet_ids: list[str], admin: bool) -> dict[str, Any]:
    body = {
        **_standard(row),
        "name": row.name,
        "description": row.description,
        "admin_state_up": row.admin_state_up,
        "status": row.status,
        "subnets": subnet_ids,
        "shared": row.shared,
        "router:external": row.external,
        "mtu": row.mtu,
        "port_security_enabled": row.port_security_enabled,
        "availability_zone_hints": [],
        "availability_zones": ["nova"],
        "ipv4_address_scope": None,
        "ipv6_address_scope": None,
        "is_default": False,
        "l2_adjacency": True,
        "tags": list(row.tags or []),
    }
    if admin:
        body["provider:network_type"] = row.network_type
        body["provider:physical_network"] = row.physical_network
        body["provider:segmentation_id"] = row.segmentation_id
    return body


def subnet(row: Subnet, pools: list[dict[str, str]]) -> dict[str, Any]:
    return {
        **_standard(row),
        "name": row.name,
        "description": row.description,
        "network_id": row.network_id,
        "ip_version": row.ip_version,
        "cidr": row.cidr,
        "gateway_ip": row.gateway_ip,
        "allocation_pools": pools,
        "enable_dhcp": row.enable_dhcp,
        "dns_nameservers": list(row.dns_nameservers or []),
        "host_routes": list(row.host_routes or []),
        "ipv6_address_mode": None,
        "ipv6_ra_mode": None,
        "subnetpool_id": None,
        "segment_id": None,
        "service_types": [],
        "dns_publish_fixed_ip": False,
        "tags": list(row.tags or []),
    }


def port(row: Port, fixed_ips: list[dict[str, str]], group_ids: list[str], admin: bool) -> dict[str, Any]:
    body = {
        **_standard(row),
        "name": row.name,
        "description": row.description,
        "network_id": row.network_id,
        "mac_address": row.mac_address,
        "fixed_ips": fixed_ips,
        "device_id": row.device_id,
        "device_owner": row.device_owner,
        "admin_state_up": row.admin_state_up,
        "status": row.status,
        "security_groups": group_ids,
        "port_security_enabled": row.port_security_enabled,
        "allowed_address_pairs": [],
        "extra_dhcp_opts": [],
        "ip_allocation": "immediate",
        "dns_name": "",
        "tags": list(row.tags or []),
    }
    if admin:
        body["binding:host_id"] = row.binding_host_id
        body["binding:vnic_type"] = row.binding_vnic_type
        body["binding:vif_type"] = row.binding_vif_type
        body["binding:vif_details"] = dict(row.binding_vif_details or {})
        body["binding:profile"] = dict(row.binding_profile or {})
    return body


def rule(row: SecurityGroupRule, in_default: bool) -> dict[str, Any]:
    return {
        **_standard(row),
        "security_group_id": row.security_group_id,
        "direction": row.direction,
        "ethertype": row.ethertype,
        "protocol": row.protocol,
        "port_range_min": row.port_range_min,
        "port_range_max": row.port_range_max,
        "remote_ip_prefix": row.remote_ip_prefix,
        "remote_group_id": row.remote_group_id,
        "remote_address_group_id": None,
        "normalized_cidr": row.remote_ip_prefix,
        "description": row.description,
        "belongs_to_default_sg": in_default,
    }


def security_group(row: SecurityGroup, rules: list[SecurityGroupRule], is_default: bool) -> dict[str, Any]:
    return {
        **_standard(row),
        "name": row.name,
        "description": row.description,
        "security_group_rules": [rule(r, is_default) for r in rules],
        "stateful": row.stateful,
        "shared": False,
        "tags": list(row.tags or []),
    }


def extension(alias: str, name: str, description: str) -> dict[str, Any]:
    return {
        "alias": alias,
        "name": name,
        "description": description,
        "updated": "2026-01-01T00:00:00Z",
        "links": [],
    }


def versions(base_url: str) -> dict[str, Any]:
    href = base_url.rstrip("/") + "/networking/v2.0/"
    return {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": href}]}]}


def resources(base_url: str) -> dict[str, Any]:
    base = base_url.rstrip("/") + "/networking/v2.0/"
    return {
        "resources": [
            {"name": name, "collection": collection, "links": [{"rel": "self", "href": base + collection}]}
            for name, collection in (("network", "networks"), ("subnet", "subnets"), ("port", "ports"))
        ]
    }
