"""JSON Schema of the Neutron v2.0 request bodies (kumo/network/routes.py), for the OpenAPI
document. The parsing code (networks.py, subnets.py, ports.py, security_groups.py, quotas.py)
stays the authority."""

from __future__ import annotations

from kumo.api.openapi import BOOLEAN, INT32, UUID, Schema, nullable, obj, query
from kumo.network import networks, ports, quotas, security_groups, subnets

_TEXT: Schema = {"type": "string", "maxLength": 255}
_IP: Schema = {"type": "string", "format": "ipv4"}
_TAGS: Schema = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 255}}
_FIXED_IPS: Schema = {
    "type": "array",
    "items": obj({"subnet_id": UUID, "ip_address": _IP}),
}


def _envelope(
    key: str, properties: Schema, allowed: frozenset[str], required: tuple[str, ...] = ()
) -> Schema:
    chosen = {name: schema for name, schema in properties.items() if name in allowed}
    return obj({key: obj(chosen, required)}, [key])


_NETWORK: Schema = {
    "name": _TEXT,
    "description": _TEXT,
    "admin_state_up": BOOLEAN,
    "shared": BOOLEAN,
    "mtu": {"type": "integer", "minimum": 68, "maximum": 9000},
    "port_security_enabled": BOOLEAN,
    "project_id": {"type": "string", "maxLength": 64},
    "provider:network_type": {"type": "string", "enum": list(networks.NETWORK_TYPES)},
    "provider:physical_network": nullable({"type": "string", "maxLength": 64}),
    "provider:segmentation_id": nullable({"type": "integer", "minimum": 1, "maximum": 4094}),
    "router:external": BOOLEAN,
    "availability_zone_hints": {"type": "array", "items": {"type": "string", "enum": ["nova"]}},
    "is_default": {"type": "boolean", "enum": [False]},
    "tags": _TAGS,
}
NETWORK_CREATE = _envelope("network", _NETWORK, networks.CREATE_ATTRS)
NETWORK_UPDATE = _envelope("network", _NETWORK, networks.UPDATE_ATTRS)

_SUBNET: Schema = {
    "name": _TEXT,
    "description": _TEXT,
    "network_id": UUID,
    "project_id": {"type": "string", "maxLength": 64},
    "ip_version": {"type": "integer", "enum": [4]},
    "cidr": {"type": "string", "maxLength": 64},
    "gateway_ip": nullable(_IP),
    "allocation_pools": {
        "type": "array",
        "minItems": 1,
        "items": obj({"start": _IP, "end": _IP}, ["start", "end"]),
    },
    "enable_dhcp": BOOLEAN,
    "dns_nameservers": {"type": "array", "items": _IP},
    "host_routes": {
        "type": "array",
        "items": obj(
            {"destination": {"type": "string", "maxLength": 64}, "nexthop": _IP}, ["destination", "nexthop"]
        ),
    },
    "subnetpool_id": {"type": "null"},
    "prefixlen": {"type": "null"},
    "use_default_subnet_pool": {"type": "boolean", "enum": [False]},
    "ipv6_address_mode": {"type": "null"},
    "ipv6_ra_mode": {"type": "null"},
    "segment_id": {"type": "null"},
    "service_types": {"type": "array", "maxItems": 0},
    "tags": _TAGS,
}
SUBNET_CREATE = _envelope("subnet", _SUBNET, subnets.CREATE_ATTRS, ("network_id", "cidr"))
SUBNET_UPDATE = _envelope("subnet", _SUBNET, subnets.UPDATE_ATTRS)

_PORT: Schema = {
    "name": _TEXT,
    "description": _TEXT,
    "network_id": UUID,
    "project_id": {"type": "string", "maxLength": 64},
    "admin_state_up": BOOLEAN,
    "mac_address": {"type": "string", "pattern": "^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$"},
    "fixed_ips": _FIXED_IPS,
    "device_id": _TEXT,
    "device_owner": _TEXT,
    "security_groups": {"type": "array", "items": UUID},
    "port_security_enabled": BOOLEAN,
    "binding:host_id": _TEXT,
    "binding:vnic_type": {"type": "string", "enum": list(ports.VNIC_TYPES)},
    "binding:profile": {"type": "object"},
    "allowed_address_pairs": {"type": "array", "maxItems": 0},
    "extra_dhcp_opts": {"type": "array", "maxItems": 0},
    "dns_name": {"type": "string", "maxLength": 0},
    "tags": _TAGS,
}
PORT_CREATE = _envelope("port", _PORT, ports.CREATE_ATTRS, ("network_id",))
PORT_UPDATE = _envelope("port", _PORT, ports.UPDATE_ATTRS)

SECURITY_GROUP_CREATE = _envelope(
    "security_group",
    {
        "name": _TEXT,
        "description": _TEXT,
        "project_id": {"type": "string"},
        "stateful": {"enum": [True]},
        "tags": _TAGS,
    },
    security_groups.GROUP_ATTRS,
)
SECURITY_GROUP_UPDATE = _envelope(
    "security_group",
    {"name": _TEXT, "description": _TEXT, "stateful": {"enum": [True]}},
    frozenset({"name", "description", "stateful"}),
)
_PORT_NUMBER: Schema = nullable({"type": "integer", "minimum": 0, "maximum": 65535})
SECURITY_GROUP_RULE_CREATE = _envelope(
    "security_group_rule",
    {
        "security_group_id": UUID,
        "direction": {"type": "string", "enum": list(security_groups.DIRECTIONS)},
        "ethertype": {"type": "string", "enum": list(security_groups.ETHERTYPES)},
        "protocol": nullable({"type": "string", "maxLength": 16}),
        "port_range_min": _PORT_NUMBER,
        "port_range_max": _PORT_NUMBER,
        "remote_ip_prefix": nullable({"type": "string", "maxLength": 64}),
        "remote_group_id": nullable(UUID),
        "remote_address_group_id": {"type": "null"},
        "description": _TEXT,
        "project_id": {"type": "string", "maxLength": 64},
    },
    security_groups.RULE_ATTRS,
    ("security_group_id", "direction"),
)
_LIMIT: Schema = {"type": "integer", "minimum": -1, "maximum": 2147483647}
QUOTA_UPDATE = obj(
    {"quota": obj({**{name: _LIMIT for name in quotas.DEFAULTS}, "check_limit": BOOLEAN})}, ["quota"]
)


# GET /internal/v1/networks/{id}/dhcp-generation (kumo/agent/routes.py): kumo/network/dhcp.py
# parse_served_query reads it.
DHCP_SERVED_QUERY: Schema = query(("min", INT32), ("wait", INT32))
