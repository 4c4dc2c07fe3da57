"""What compute calls for a server's networking (kumo/compute/server_networks.py). Every
function runs inside the caller's transaction, the server's own, so a server and its ports are
written or undone together.

    allocate_for_server(session, ctx, server_id, requested, project_id=…, availability_zone="nova")
        -> [port ids]
        `project_id` is the server's project (Nova's instance.project_id): the ports it makes
        are that project's, counted in its quota, with its default security group, and "auto"
        chooses among its networks, whoever asks (an admin attaching to a tenant's server).
        `requested`: "auto" | "none" | [RequestedNetwork(network_id=… | port_id=…, fixed_ip=…)]
        (Nova's `networks` of POST /servers). Creates a port per network (device_id = the server,
        device_owner compute:<az>; deleted with the server) and claims the ports named (kept,
        unbound, when the server goes). "auto": the project's one network, else the one shared
        network; none → no port; more than one → 409 (Nova's NetworkAmbiguous).
    bind_server_ports(session, server_id, host, vnic_type="normal", availability_zone=None)
        -> [spec port dicts]
        Binds the server's ports to the host (a hypervisor's name, or a node uuid with
        vnic_type "baremetal") and returns them in the agents' contract shape (spec_port).
        With the zone the server landed in, device_owner becomes compute:<that zone> (Nova
        writes the instance's zone once it is placed).
        On a node each port takes the MAC of one of the node's NICs (its Ironic ports, as
        `set_node_macs_hook` reads them), in NIC order: the network host's DHCP reservation
        is then the physical machine's. A node with fewer NICs than the server has ports is
        NodeHasNoPort (409); nothing is bound.
    server_ports(session, server_id) -> [spec port dicts]     what the spawn payload carries
    release_server_ports(session, server_id, only=None) -> None
        On delete (or of the one port `only`, an interface detached): ours go, others unbound
        (a port a node lent its MAC to gets a fresh one: the NIC's MAC leaves with the node)
    next_nic_index(session, server_id) -> int                 where an attached interface goes
    bind_server_port(session, server_id, port_id, host) -> spec port dict
        Binds one port of a hypervisor's server (an interface attached) to its host.
    server_addresses(session, server_ids) -> {server: {network name: [address dicts]}}
    server_security_groups(session, server_id) -> [group names]
    servers_security_groups(session, server_ids) -> {server: [group names]}   one read for a page
    server_security_group_rows(session, server_id) -> [SecurityGroup]
    server_interfaces(session, server_id) -> [{id, network_id, mac_address, status, fixed_ips}]
    set_ports_status(session, port_ids, "ACTIVE" | "DOWN") -> None   the agent's report
    add_server_security_group(session, ctx, server_id, name_or_id) / remove_server_security_group
        Nova's addSecurityGroup/removeSecurityGroup: the group on (off) every port of the server.

Each change of a port's existence, addresses or binding bumps its network's DHCP generation
(kumo/network/ipam.py:lock_network), in the same transaction, and makes a firewall sync pending
on the hosts it affects (kumo/network/firewall.py; a first placement's host excepted: its agent
applies the rules before it builds the guest)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.errors import Conflict, Forbidden
from kumo.network import firewall, ipam, networks, ports, quotas, security_groups
from kumo.network.errors import InvalidInput, MacAddressInUse, PortInUse, PortNotFound
from kumo.network.ipam import FixedIpRequest
from kumo.network.models import Network, Port, PortSecurityGroup, SecurityGroup

PORT_STATUSES = ("ACTIVE", "DOWN", "BUILD", "ERROR")
BAREMETAL = "baremetal"

# A baremetal node's NIC MACs, in the order a server's ports take them (session, node uuid).
NodeMacs = Callable[[Session, str], list[str]]


def _no_node_macs(session: Session, node: str) -> list[str]:
    return []


_node_macs: list[NodeMacs] = [_no_node_macs]


def set_node_macs_hook(hook: NodeMacs) -> None:
    """Registered at start-up by kumo.wiring (baremetal's Ironic ports): networking imports no
    baremetal."""
    _node_macs[0] = hook


class NodeHasNoPort(Conflict):
    """A server's ports cannot be bound to a baremetal node without as many NICs (Ironic ports)."""

    def __init__(self, node: str, nics: int, wanted: int) -> None:
        super().__init__(
            f"Baremetal node {node} has {nics} Ironic port(s) (NICs by MAC) for the server's {wanted} "
            "network port(s): enroll its NICs (openstack baremetal port create <MAC> --node <node>)."
        )


@dataclass(frozen=True)
class RequestedNetwork:
    """One entry of Nova's `networks`: a network (with an optional fixed IP) or a port."""

    network_id: str | None = None
    port_id: str | None = None
    fixed_ip: str | None = None
    tag: str | None = None  # the NIC's device tag (Nova's `tag`)


def _auto_network(session: Session, project_id: str) -> Network | None:
    """Nova's rule: the project's own networks, else the shared ones; more than one is ambiguous."""
    for condition in (
        (Network.project_id == project_id) & Network.shared.is_(False),
        Network.shared.is_(True),
    ):
        found = list(session.scalars(select(Network).where(condition, Network.external.is_(False)).limit(2)))
        if len(found) > 1:
            raise Conflict("Multiple possible networks found, use a Network ID to be more specific.")
        if found:
            return found[0]
    return None


def allocate_for_server(
    session: Session,
    ctx: RequestContext,
    server_id: str,
    requested: Literal["auto", "none"] | Sequence[RequestedNetwork],
    *,
    project_id: str,
    availability_zone: str = "nova",
    group_names: Sequence[str] | None = None,
    first_index: int = 0,
) -> list[str]:
    """The server's port ids, in the order asked, their NIC indexes from `first_index` on.
    Ports are made in `project_id`, the server's project (not necessarily ctx's: an admin may
    act on another project's server); ctx decides only what the caller may see and name."""
    if requested == "none":
        return []
    if requested == "auto":
        network = _auto_network(session, project_id)
        requested = [] if network is None else [RequestedNetwork(network_id=network.id)]
    owner = f"compute:{availability_zone}"
    made = [r for r in requested if r.port_id is None]
    if made:
        quotas.check(session, project_id, "port", adding=len(made))
    # Every network the request touches is locked before anything is read for a claim: a port
    # is then re-read under its network's lock (two creates naming one port: one claims it, the
    # other gets PortInUse), and the locks are taken in one order (no deadlock between two
    # multi-NIC creates asking in opposite orders).
    touched: set[str] = set()
    for entry in requested:
        if entry.port_id is not None:
            touched.add(ports.get_port(session, ctx, entry.port_id).network_id)
        elif entry.network_id is not None:
            touched.add(networks.get_network(session, ctx, entry.network_id).id)
    lock_networks(session, touched)
    port_ids = []
    for index, entry in enumerate(requested, start=first_index):
        if entry.port_id is not None:
            port = session.get_one(Port, entry.port_id, populate_existing=True)
            if not ctx.owns(port.project_id):
                raise Forbidden(f"Port {port.id} belongs to another project.")
            if port.device_id or port.device_owner:
                raise PortInUse(port.id, port.device_id or port.device_owner)
            port.device_id, port.device_owner, port.server_nic_index = server_id, owner, index
            port.device_tag = entry.tag
            port_ids.append(port.id)
            continue
        if entry.network_id is None:
            raise InvalidInput("each requested network needs a network or a port")
        network = networks.get_network(session, ctx, entry.network_id)
        fixed = None
        if entry.fixed_ip is not None:
            ports.may_choose_addresses(ctx, network)
            fixed = [FixedIpRequest(ip_address=entry.fixed_ip)]
        groups: list[str] = []
        if network.port_security_enabled:
            groups = security_groups.resolve_for_port(
                session, ctx, project_id, None if group_names is None else list(group_names)
            )
        port = ports.make_port(
            session,
            ports.PortRequest(
                network=network,
                project_id=project_id,
                fixed_ips=fixed,
                device_id=server_id,
                device_owner=owner,
                security_groups=groups,
                port_security_enabled=network.port_security_enabled,
                created_for_server=True,
                server_nic_index=index,
            ),
        )
        port.device_tag = entry.tag
        port_ids.append(port.id)
    session.flush()
    return port_ids


def lock_networks(session: Session, network_ids: Iterable[str]) -> None:
    """The networks' locks (and new DHCP generations), always in id order."""
    for network_id in sorted(set(network_ids)):
        ipam.lock_network(session, network_id)


def _server_port_rows(session: Session, server_id: str) -> list[Port]:
    query = select(Port).where(Port.device_id == server_id, Port.device_owner.like("compute:%"))
    return list(session.scalars(query.order_by(Port.server_nic_index, Port.created_at, Port.id)))


def spec_port(port: Port, network: Network, fixed: list[dict[str, str]]) -> dict[str, Any]:
    """A port in the shape agents receive in a server's spec (`instance["ports"]`)."""
    return {
        "id": port.id,
        "network_id": network.id,
        "mac_address": port.mac_address,
        "mtu": network.mtu,
        "fixed_ips": fixed,
        "bridge": ports.bridge_name(network.id),
        "tap": ports.tap_name(port.id),
        "dhcp_generation": network.dhcp_generation,
    }


def server_ports(session: Session, server_id: str) -> list[dict[str, Any]]:
    rows = _server_port_rows(session, server_id)
    if not rows:  # one statement for a server without ports (the metadata service reads many)
        return []
    fixed = ports.fixed_ips(session, [p.id for p in rows])
    nets = {
        n.id: n for n in session.scalars(select(Network).where(Network.id.in_({p.network_id for p in rows})))
    }
    return [spec_port(p, nets[p.network_id], fixed[p.id]) for p in rows]


def bind_server_ports(
    session: Session,
    server_id: str,
    host: str,
    vnic_type: str = "normal",
    availability_zone: str | None = None,
    sync_firewalls: bool = True,
) -> list[dict[str, Any]]:
    """Bind the server's ports to `host`; with `sync_firewalls` the old and new hosts get a
    firewall sync (kumo/network/firewall.py). A first placement passes False: its host's agent
    applies the ports' rules before it builds the guest anyway, and the scheduler's transaction
    then takes no firewall host's lock (a lock it would hold while it claims providers)."""
    if vnic_type not in ports.VNIC_TYPES:
        raise InvalidInput(f"binding:vnic_type {vnic_type} is not supported")
    rows = _server_port_rows(session, server_id)
    if not rows:
        return []
    macs = _node_macs[0](session, host) if vnic_type == BAREMETAL else []
    if vnic_type == BAREMETAL and len(macs) < len(rows):
        raise NodeHasNoPort(host, len(macs), len(rows))
    lock_networks(session, (port.network_id for port in rows))
    ids = [port.id for port in rows]
    hosts_before = firewall.hosts_of_ports(session, ids) if sync_firewalls else set()
    for index, port in enumerate(rows):
        network = session.get_one(Network, port.network_id, populate_existing=True)
        if vnic_type == BAREMETAL and port.mac_address != macs[index]:
            if ipam.mac_in_use(session, network.id, macs[index], except_port=port.id):
                raise MacAddressInUse(network.id, macs[index])
            port.mac_address = macs[index]
        port.binding_host_id, port.binding_vnic_type = host, vnic_type
        if availability_zone:
            port.device_owner = f"compute:{availability_zone}"
        port.binding_vif_type, port.binding_vif_details = ports.binding_details(host, vnic_type, network)
        port.status = "BUILD"
    session.flush()
    if sync_firewalls:
        firewall.request(session, hosts_before | firewall.hosts_of_ports(session, ids))
    session.expire_all()
    return server_ports(session, server_id)


def next_nic_index(session: Session, server_id: str) -> int:
    """The NIC index after the server's last port's (0 for a server without ports)."""
    rows = _server_port_rows(session, server_id)
    return max((p.server_nic_index or 0 for p in rows), default=-1) + 1


def bind_server_port(session: Session, server_id: str, port_id: str, host: str) -> dict[str, Any]:
    """Bind one port of the server (an interface attached to a hypervisor's server) to the
    server's host; the port in the agents' contract shape."""
    port = next((p for p in _server_port_rows(session, server_id) if p.id == port_id), None)
    if port is None:
        raise PortNotFound(port_id)
    lock_networks(session, [port.network_id])
    hosts_before = firewall.hosts_of_ports(session, [port.id])
    network = session.get_one(Network, port.network_id, populate_existing=True)
    port.binding_host_id, port.binding_vnic_type = host, "normal"
    port.binding_vif_type, port.binding_vif_details = ports.binding_details(host, "normal", network)
    port.status = "BUILD"
    session.flush()
    firewall.request(session, hosts_before | firewall.hosts_of_ports(session, [port.id]))
    session.expire_all()
    return next(p for p in server_ports(session, server_id) if p["id"] == port_id)


def release_server_ports(session: Session, server_id: str, only: str | None = None) -> None:
    rows = [p for p in _server_port_rows(session, server_id) if only is None or p.id == only]
    lock_networks(session, (port.network_id for port in rows))
    affected = firewall.hosts_of_ports(session, [port.id for port in rows])
    for port in rows:
        if port.created_for_server:
            session.delete(port)
            continue
        if port.binding_vnic_type == BAREMETAL and port.binding_host_id:
            port.mac_address = ipam.choose_mac(session, port.network_id, None)
        port.device_id = port.device_owner = port.binding_host_id = ""
        port.device_tag = None
        port.binding_vif_type, port.binding_vif_details, port.binding_profile = "unbound", {}, {}
        port.status = "DOWN"
    session.flush()
    firewall.request(session, affected)


def server_addresses(
    session: Session, server_ids: Sequence[str]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Nova's `addresses`: by network name, each address with its version, type and MAC."""
    found: dict[str, dict[str, list[dict[str, Any]]]] = {sid: {} for sid in server_ids}
    if not server_ids:
        return found
    rows = list(
        session.execute(
            select(Port, Network.name)
            .join(Network, Network.id == Port.network_id)
            .where(Port.device_id.in_(server_ids), Port.device_owner.like("compute:%"))
            .order_by(Port.server_nic_index, Port.created_at, Port.id)
        )
    )
    fixed = ports.fixed_ips(session, [port.id for port, _ in rows])
    for port, network_name in rows:
        addresses = found[port.device_id].setdefault(network_name, [])
        for ip in fixed[port.id]:
            addresses.append(
                {
                    "version": ipaddress.ip_address(ip["ip_address"]).version,
                    "addr": ip["ip_address"],
                    "OS-EXT-IPS:type": "fixed",
                    "OS-EXT-IPS-MAC:mac_addr": port.mac_address,
                }
            )
    return found


def server_security_groups(session: Session, server_id: str) -> list[str]:
    rows = session.scalars(
        select(SecurityGroup.name)
        .join(PortSecurityGroup, PortSecurityGroup.security_group_id == SecurityGroup.id)
        .join(Port, Port.id == PortSecurityGroup.port_id)
        .where(Port.device_id == server_id, Port.device_owner.like("compute:%"))
        .distinct()
    )
    return sorted(rows)


def servers_security_groups(session: Session, server_ids: Sequence[str]) -> dict[str, list[str]]:
    """server_security_groups for many servers in one read (a page of a server list)."""
    found: dict[str, list[str]] = {sid: [] for sid in server_ids}
    if not server_ids:
        return found
    rows = session.execute(
        select(Port.device_id, SecurityGroup.name)
        .join(PortSecurityGroup, PortSecurityGroup.security_group_id == SecurityGroup.id)
        .join(Port, Port.id == PortSecurityGroup.port_id)
        .where(Port.device_id.in_(server_ids), Port.device_owner.like("compute:%"))
        .distinct()
    )
    for server_id, name in rows:
        found[server_id].append(name)
    return {sid: sorted(names) for sid, names in found.items()}


def server_security_group_rows(session: Session, server_id: str) -> list[SecurityGroup]:
    """The distinct security groups of the server's ports, by name. (Distinct by id in a
    subquery: a group's row holds JSON columns, which PostgreSQL cannot compare for DISTINCT.)"""
    group_ids = (
        select(PortSecurityGroup.security_group_id)
        .join(Port, Port.id == PortSecurityGroup.port_id)
        .where(Port.device_id == server_id, Port.device_owner.like("compute:%"))
    )
    query = select(SecurityGroup).where(SecurityGroup.id.in_(group_ids))
    return sorted(session.scalars(query), key=lambda group: (group.name, group.id))


def server_interfaces(session: Session, server_id: str) -> list[dict[str, Any]]:
    """The server's ports with their status and fixed IPs (subnet and address), in NIC order."""
    rows = _server_port_rows(session, server_id)
    fixed = ports.fixed_ips(session, [p.id for p in rows]) if rows else {}
    return [
        {
            "id": p.id,
            "network_id": p.network_id,
            "mac_address": p.mac_address,
            "status": p.status,
            "fixed_ips": fixed[p.id],
            "tag": p.device_tag,
        }
        for p in rows
    ]


def set_ports_status(session: Session, port_ids: Sequence[str], status: str) -> None:
    if status not in PORT_STATUSES:
        raise InvalidInput(f"port status {status} is not one of {', '.join(PORT_STATUSES)}")
    if port_ids:
        session.execute(
            update(Port)
            .where(Port.id.in_(port_ids))
            .values(status=status)
            .execution_options(synchronize_session=False)
        )


def _server_group(
    session: Session, ctx: RequestContext, server_id: str, name_or_id: str
) -> tuple[list[Port], str, dict[str, list[str]]]:
    rows = _server_port_rows(session, server_id)
    if not rows:
        raise InvalidInput(f"instance_id {server_id} could not be found as device id on any ports")
    # "default" is the server's project's default group (its ports are in that project).
    [group_id] = security_groups.resolve_for_port(session, ctx, rows[0].project_id, [name_or_id])
    return rows, group_id, ports.group_ids(session, [p.id for p in rows])


def add_server_security_group(session: Session, ctx: RequestContext, server_id: str, name_or_id: str) -> None:
    """The group (a name or id the caller sees) on every port of the server. InvalidInput when
    the server has no port, a port of it has port security off, or a port has the group."""
    rows, group_id, current = _server_group(session, ctx, server_id, name_or_id)
    for port in rows:
        if not port.port_security_enabled:
            raise InvalidInput(
                f"Security group {name_or_id} cannot be applied: port {port.id} has port security disabled"
            )
        if group_id in current[port.id]:
            raise InvalidInput(
                f"Security group {name_or_id} is already associated with the instance {server_id}"
            )
    hosts_before = firewall.hosts_of_ports(session, [port.id for port in rows])
    for port in rows:
        ports.replace_groups(session, port, [*current[port.id], group_id])
        port.revision_number += 1
    session.flush()
    firewall.request(session, hosts_before | firewall.hosts_of_ports(session, [port.id for port in rows]))


def remove_server_security_group(
    session: Session, ctx: RequestContext, server_id: str, name_or_id: str
) -> None:
    """The group off every port of the server that has it; InvalidInput when none has it."""
    rows, group_id, current = _server_group(session, ctx, server_id, name_or_id)
    having = [port for port in rows if group_id in current[port.id]]
    if not having:
        raise InvalidInput(f"Security group {name_or_id} not associated with the instance {server_id}")
    hosts_before = firewall.hosts_of_ports(session, [port.id for port in having])
    for port in having:
        ports.replace_groups(session, port, [g for g in current[port.id] if g != group_id])
        port.revision_number += 1
    session.flush()
    firewall.request(session, hosts_before | firewall.hosts_of_ports(session, [port.id for port in having]))
