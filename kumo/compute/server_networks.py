"""A server's networking as the compute API shows it: Nova's `networks` of POST /servers read
per microversion, ports allocated through kumo.network.servers with Neutron's errors turned into
Nova's, and the read side (`addresses`, security groups, os-interface, ips).

The ports themselves (creation, binding, release, addresses) are kumo.network's; compute calls
only kumo/network/servers.py."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute.microversion import Microversion
from kumo.compute.node_hosts import is_uuid
from kumo.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.network import errors as net_errors
from kumo.network import ports as net_ports
from kumo.network import security_groups as net_security_groups
from kumo.network import servers as net
from kumo.network.models import SecurityGroup, SecurityGroupRule
from kumo.network.servers import RequestedNetwork

Requested = Literal["auto", "none"] | tuple[RequestedNetwork, ...]

_ENTRY_KEYS = frozenset({"uuid", "port", "fixed_ip", "tag"})


def _tag_allowed(version: Microversion) -> bool:
    """Nova: `tag` from 2.32, refused again in 2.37-2.41, back from 2.42."""
    return version.at_least("2.32") and not (version.at_least("2.37") and version.before("2.42"))


def _entry(item: Any, version: Microversion) -> RequestedNetwork:
    if not isinstance(item, dict):
        raise BadRequest(
            f"Invalid input for field/attribute networks. Value: {item!r}. is not of type 'object'"
        )
    unexpected = set(item) - _ENTRY_KEYS
    if "tag" in item and not _tag_allowed(version):
        unexpected.add("tag")
    if unexpected:
        raise BadRequest(
            f"Invalid input for field/attribute networks. Additional properties are not allowed "
            f"({', '.join(repr(k) for k in sorted(unexpected))} were unexpected)"
        )
    tag = item.get("tag")
    if tag is not None and (not isinstance(tag, str) or not 1 <= len(tag) <= 60 or "," in tag or "/" in tag):
        raise BadRequest(f"Invalid input for field/attribute tag. Value: {tag!r}.")
    port, network, fixed_ip = item.get("port"), item.get("uuid"), item.get("fixed_ip")
    if port is not None:
        if not isinstance(port, str) or not is_uuid(port):
            raise BadRequest(f"Invalid input for field/attribute port. Value: {port!r}. is not a 'uuid'")
        return RequestedNetwork(port_id=port, tag=tag)
    if network is None:
        # Nova: a network entry needs a network or a port (fixed_ip alone is refused too).
        raise BadRequest("Bad networks format: network uuid is not in proper format (None)")
    if not isinstance(network, str) or not is_uuid(network):
        raise BadRequest(f"Bad networks format: network uuid is not in proper format ({network})")
    if fixed_ip is not None:
        try:
            ipaddress.ip_address(fixed_ip if isinstance(fixed_ip, str) else "")
        except ValueError:
            raise BadRequest(
                f"Invalid input for field/attribute fixed_ip. Value: {fixed_ip!r}. is not a 'ip-address'"
            ) from None
    return RequestedNetwork(network_id=network, fixed_ip=fixed_ip, tag=tag)


def parse_networks(present: bool, value: Any, version: Microversion, max_count: int) -> Requested:
    """Nova's `networks` (`present`: whether the body had the key). Before 2.37 it is optional
    (absent or [] means auto); from 2.37 it is required: "auto", "none" or a list."""
    if not present:
        if version.at_least("2.37"):
            raise BadRequest("Invalid input for field/attribute server. 'networks' is a required property")
        return "auto"
    if isinstance(value, str) and value in ("auto", "none"):
        # Nova takes the strings from 2.37; kumo takes them at every version (no harm in it).
        return "auto" if value == "auto" else "none"
    if not isinstance(value, list):
        raise BadRequest(f"Invalid input for field/attribute networks. Value: {value!r}. is not valid")
    entries = tuple(_entry(item, version) for item in value)
    if not entries:
        return "auto"
    if max_count > 1 and any(e.port_id is not None for e in entries):
        raise BadRequest(
            "Unable to launch multiple instances with a single configured port ID. "
            "Please launch your instance one by one with different ports."
        )
    if max_count > 1 and any(e.fixed_ip is not None for e in entries):
        raise BadRequest("Invalid fixed IP address and max count request: a fixed IP needs max_count 1.")
    return entries


def parse_security_groups(value: Any) -> list[str] | None:
    """Nova's `security_groups`: [{"name": name or id}], for the ports the server's create makes."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadRequest(f"Invalid input for field/attribute security_groups. Value: {value!r}.")
    names = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name or len(name) > 255:
            raise BadRequest(f"Invalid input for field/attribute security_groups. Value: {item!r}.")
        names.append(name)
    # as Nova (compute/api.py: `security_groups or ['default']`): an empty list is the default group
    return names or None


def allocate(
    session: Session,
    ctx: RequestContext,
    server_id: str,
    project_id: str,
    requested: Requested,
    availability_zone: str,
    group_names: Sequence[str] | None,
) -> list[str]:
    """The server's ports, made or claimed in the caller's transaction, in the server's project
    `project_id`, with Neutron's refusals as Nova answers them
    (nova/api/openstack/compute/servers.py:create)."""
    try:
        return net.allocate_for_server(
            session,
            ctx,
            server_id,
            requested,
            project_id=project_id,
            availability_zone=availability_zone,
            group_names=group_names,
        )
    except net_errors.NetworkNotFound as exc:
        raise BadRequest(str(exc)) from None
    except net_errors.PortNotFound as exc:
        raise BadRequest(_port_not_found(session, ctx, requested) or str(exc)) from None
    except net_errors.PortInUse as exc:
        raise Conflict(f"Port {_port_of(exc, requested)} is still in use.") from None
    except net_errors.IpAddressAlreadyAllocated:
        taken = next((r.fixed_ip for r in _entries(requested) if r.fixed_ip), "")
        raise BadRequest(f"Fixed IP address {taken} is already in use on instance {server_id}.") from None
    except net_errors.IpAddressGenerationFailure as exc:
        raise BadRequest(f"No fixed IP addresses available for network: {exc}") from None
    except net_errors.SecurityGroupNotFound as exc:
        raise BadRequest(str(exc)) from None
    except net_errors.OverQuota:
        raise Forbidden("Maximum number of ports exceeded") from None
    except NotFound as exc:  # a subnet or another lookup of the request's things
        raise BadRequest(str(exc)) from None


def _entries(requested: Requested) -> tuple[RequestedNetwork, ...]:
    return () if isinstance(requested, str) else requested


def _port_not_found(session: Session, ctx: RequestContext, requested: Requested) -> str | None:
    """The first requested port that does not exist (for the caller), in Nova's words."""
    for entry in _entries(requested):
        if entry.port_id is None:
            continue
        try:
            net_ports.get_port(session, ctx, entry.port_id)
        except NotFound:
            return f"Port id {entry.port_id} could not be found."
    return None


def _port_of(exc: Exception, requested: Requested) -> str:
    for entry in _entries(requested):
        if entry.port_id is not None and entry.port_id in str(exc):
            return entry.port_id
    return next((e.port_id for e in _entries(requested) if e.port_id), "")


# -- the read side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Networking:
    """What server bodies show of their servers' ports: `addresses` (Nova's shape, by network
    name) and the distinct security group names, each by server uuid (a server missing: none)."""

    addresses: Mapping[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    security_groups: Mapping[str, list[str]] = field(default_factory=dict)


NO_NETWORKING = Networking()


def of_servers(session: Session, server_ids: Sequence[str]) -> Networking:
    """The networking of a page of servers, in three reads whatever the page's size (no N+1)."""
    if not server_ids:
        return NO_NETWORKING
    addresses = net.server_addresses(session, server_ids)
    return Networking(addresses, net.servers_security_groups(session, server_ids))


def ips(session: Session, server_id: str) -> dict[str, list[dict[str, Any]]]:
    """GET /servers/{id}/ips: each network's addresses, version and addr only (Nova's ips view)."""
    found = net.server_addresses(session, [server_id])[server_id]
    return {
        name: [{"version": a["version"], "addr": a["addr"]} for a in addresses]
        for name, addresses in found.items()
    }


def _nova_rule(rule: SecurityGroupRule, names: Mapping[str, SecurityGroup]) -> dict[str, Any]:
    """A Neutron rule as Nova's security group proxy showed it."""
    remote = names.get(rule.remote_group_id or "")
    return {
        "id": rule.id,
        "parent_group_id": rule.security_group_id,
        "ip_protocol": rule.protocol,
        "from_port": -1 if rule.port_range_min is None else rule.port_range_min,
        "to_port": -1 if rule.port_range_max is None else rule.port_range_max,
        "ip_range": {"cidr": rule.remote_ip_prefix} if rule.remote_ip_prefix else {},
        "group": {"name": remote.name, "tenant_id": remote.project_id} if remote is not None else {},
    }


def security_groups(session: Session, server_id: str) -> list[dict[str, Any]]:
    """GET /servers/{id}/os-security-groups: the groups of the server's ports, in Nova's shape
    (Nova shows ingress rules only: it never had egress ones)."""
    groups = net.server_security_group_rows(session, server_id)
    rules = net_security_groups.rules_by_group(session, [g.id for g in groups])
    wanted = {r.remote_group_id for rs in rules.values() for r in rs if r.remote_group_id}
    by_id = {g.id: g for g in net_security_groups.groups_by_id(session, wanted)}
    return [
        {
            "id": group.id,
            "name": group.name,
            "description": group.description,
            "tenant_id": group.project_id,
            "rules": [_nova_rule(r, by_id) for r in rules[group.id] if r.direction == "ingress"],
        }
        for group in groups
    ]


def interface(port: dict[str, Any]) -> dict[str, Any]:
    """An os-interface attachment from a port in kumo.network.servers.server_interfaces' shape."""
    return {
        "port_id": port["id"],
        "net_id": port["network_id"],
        "mac_addr": port["mac_address"],
        "port_state": port["status"],
        "fixed_ips": [
            {"subnet_id": f["subnet_id"], "ip_address": f["ip_address"]} for f in port["fixed_ips"]
        ],
        "tag": port.get("tag"),
    }


def interfaces(session: Session, server_id: str) -> list[dict[str, Any]]:
    return [interface(p) for p in net.server_interfaces(session, server_id)]


def find_interface(session: Session, server_id: str, port_id: str) -> dict[str, Any]:
    for found in interfaces(session, server_id):
        if found["port_id"] == port_id:
            return found
    raise NotFound(f"Port {port_id} is not attached")
