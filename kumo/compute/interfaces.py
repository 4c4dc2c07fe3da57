"""os-interface attach and detach (Nova's POST /servers/{id}/os-interface and DELETE
/servers/{id}/os-interface/{port_id}) and the server actions addSecurityGroup and
removeSecurityGroup, with Nova's refusals.

Invariants:
- An attach makes (net_id) or claims (port_id) one port for the server, binds it to the
  server's host, starts the `attach_interface` action and enqueues the agent's hot-plug, all in
  the caller's transaction: a server, its port and the task for its agent are written together
  or not at all. A port it makes is the server's project's (its quota, its default security
  group, "auto" among its networks), even when an admin of another project attaches, as Nova
  creates it in the instance's project. The port's network's DHCP generation moves with the binding
  (kumo.network.servers), so the network host serves the new address.
- A detach starts the `detach_interface` action and enqueues the unplug, carrying the port as it
  is; the port leaves the server (deleted if it was made for it, else unbound) only when the
  agent reports the guest let it go (kumo.compute.lifecycle._interface_changed). A failed
  attach releases its port the same way.
- The state rules (ACTIVE or SHUTOFF, no task in flight, the lock) are kumo.compute.lifecycle's.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import lifecycle as lc
from kumo.compute import server_networks, servers
from kumo.compute.lifecycle_apply import apply, state_of
from kumo.compute.models import Instance
from kumo.compute.node_hosts import is_uuid, may_be_node
from kumo.compute.tags import tag_problem
from kumo.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.network import errors as net_errors
from kumo.network import servers as net
from kumo.network.servers import RequestedNetwork
from kumo.work.kinds import TaskKind

_KEYS = frozenset({"port_id", "net_id", "fixed_ips", "tag"})


def parse_attachment(body: Any) -> RequestedNetwork | None:
    """Nova's `interfaceAttachment` (None: neither a network nor a port, Nova's "any network")."""
    if not isinstance(body, dict) or not isinstance(body.get("interfaceAttachment"), dict):
        raise BadRequest(
            "Invalid input for field/attribute interfaceAttachment. "
            "'interfaceAttachment' is a required property"
        )
    item: dict[str, Any] = body["interfaceAttachment"]
    unexpected = set(item) - _KEYS
    if unexpected:
        raise BadRequest(
            "Invalid input for field/attribute interfaceAttachment. Additional properties are not "
            f"allowed ({', '.join(repr(k) for k in sorted(unexpected))} were unexpected)"
        )
    port_id, net_id, fixed_ips = item.get("port_id"), item.get("net_id"), item.get("fixed_ips")
    for name, value in (("port_id", port_id), ("net_id", net_id)):
        if value is not None and (not isinstance(value, str) or not is_uuid(value)):
            raise BadRequest(f"Invalid input for field/attribute {name}. Value: {value!r}. is not a 'uuid'")
    fixed_ip = _fixed_ip(fixed_ips)
    if port_id is not None and net_id is not None:
        raise BadRequest("Must not input both network_id and port_id")
    if fixed_ip is not None and net_id is None:
        raise BadRequest("Must input network_id when request IP address")
    tag = item.get("tag")
    if tag is not None and tag_problem(tag) is not None:
        raise BadRequest(f"Invalid input for field/attribute tag. Value: {tag!r}. {tag_problem(tag)}")
    if port_id is not None:
        return RequestedNetwork(port_id=port_id, tag=tag)
    if net_id is not None:
        return RequestedNetwork(network_id=net_id, fixed_ip=fixed_ip, tag=tag)
    return None


def _fixed_ip(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > 1:
        raise BadRequest(f"Invalid input for field/attribute fixed_ips. Value: {value!r}.")
    if not value:
        return None
    entry = value[0]
    address = entry.get("ip_address") if isinstance(entry, dict) else None
    if not isinstance(entry, dict) or set(entry) != {"ip_address"} or not isinstance(address, str):
        raise BadRequest(f"Invalid input for field/attribute fixed_ips. Value: {value!r}.")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise BadRequest(f"Invalid input for field/attribute ip_address. Value: {address!r}.") from None
    return address


def _changeable(session: Session, ctx: RequestContext, server_id: str, kind: TaskKind) -> Instance:
    """The server, locked, if its interfaces may change now (a baremetal server's never)."""
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id, for_update=True)
    lc.allowed(state_of(instance), str(kind))
    if instance.host is not None and may_be_node(instance.host):
        raise BadRequest("Attaching interfaces is not supported for this instance.")
    return instance


def attach(session: Session, ctx: RequestContext, server_id: str, body: Any) -> tuple[dict[str, Any], str]:
    """Attach a port to the server: the attachment (os-interface's shape) and the host to wake."""
    requested = parse_attachment(body)
    instance = _changeable(session, ctx, server_id, TaskKind.ATTACH_INTERFACE)
    host = instance.host
    if host is None:
        raise Conflict(f"Instance {server_id} has no host yet")
    # The new port takes the server's security groups (its others' ports'), else the default.
    groups = [g.id for g in net.server_security_group_rows(session, instance.uuid)] or None
    try:
        made = net.allocate_for_server(
            session,
            ctx,
            instance.uuid,
            "auto" if requested is None else [requested],
            project_id=instance.project_id,
            availability_zone=instance.availability_zone or "nova",
            group_names=groups,
            first_index=net.next_nic_index(session, instance.uuid),
        )
    except (net_errors.NetworkNotFound, net_errors.PortNotFound) as exc:
        raise NotFound(str(exc)) from None
    except net_errors.PortInUse:
        raise Conflict(f"Port {requested.port_id if requested else ''} is still in use.") from None
    except net_errors.IpAddressAlreadyAllocated:
        raise Conflict(
            f"Fixed IP {requested.fixed_ip if requested else ''} is already in use on instance {server_id}."
        ) from None
    except net_errors.IpAddressGenerationFailure as exc:
        raise BadRequest(f"No fixed IP addresses available for network: {exc}") from None
    except net_errors.OverQuota:
        raise Forbidden("Maximum number of ports exceeded") from None
    if not made:  # "auto" found no network
        raise BadRequest(
            f"No specific network was requested and none are available for project '{instance.project_id}'."
        )
    port_id = made[0]
    port = net.bind_server_port(session, instance.uuid, port_id, host)
    change = lc.change_interface(state_of(instance), TaskKind.ATTACH_INTERFACE, port, is_admin=ctx.is_admin)
    applied = apply(session, instance, change, ctx)
    return server_networks.find_interface(session, instance.uuid, port_id), applied.wake or host


def detach(session: Session, ctx: RequestContext, server_id: str, port_id: str) -> str:
    """Start unplugging the server's port `port_id`; the host to wake."""
    instance = _changeable(session, ctx, server_id, TaskKind.DETACH_INTERFACE)
    found = [p for p in net.server_ports(session, instance.uuid) if p["id"] == port_id]
    if not found:
        raise NotFound(f"Port {port_id} is not attached")
    change = lc.change_interface(
        state_of(instance), TaskKind.DETACH_INTERFACE, found[0], is_admin=ctx.is_admin
    )
    return apply(session, instance, change, ctx).wake or ""


def set_security_group(session: Session, ctx: RequestContext, server_id: str, args: Any, add: bool) -> None:
    """addSecurityGroup / removeSecurityGroup: `{"name": group name or id}` on (off) every port
    of the server, as Nova's Neutron security group API does."""
    ctx.require_writer()
    name = args.get("name") if isinstance(args, dict) else None
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise BadRequest(f"Invalid input for field/attribute name. Value: {name!r}.")
    instance = servers.get(session, ctx, server_id)
    change = net.add_server_security_group if add else net.remove_server_security_group
    try:
        change(session, ctx, instance.uuid, name)
    except net_errors.SecurityGroupNotFound:
        raise NotFound(f"Security group {name} not found for project {ctx.project_id}.") from None
    except net_errors.InvalidInput as exc:
        raise BadRequest(str(exc)) from None
