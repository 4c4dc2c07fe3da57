"""IP and MAC address management in the database: no address and no MAC is ever handed out twice,
on SQLite and on PostgreSQL, however many API workers allocate at once.

How: every change to a network's ports begins with `lock_network`, an UPDATE of the network's
row that bumps its `dhcp_generation` (which every such change must do anyway, in the same
transaction, for the DHCP server to notice). On PostgreSQL that UPDATE takes the row's lock
until commit, so the allocations of one network run one after another, each reading the addresses
and MACs taken after the previous one committed (READ COMMITTED: every statement sees what
committed before it began). On SQLite every writing transaction already holds the database's
one write lock (BEGIN IMMEDIATE). Under that lock the choice is plain: the next free address of
the pools after the subnet's cursor (`subnets.ip_cursor`, the last address chosen there;
next-fit, wrapping: kumo/network/addressing.py) and a random fa:16:3e MAC not yet on the
network. The cursor is read and moved under the same lock; it only orders the choice, the
taken set decides it, so a lost cursor costs an early reuse, never a duplicate.

The unique constraints `ip_allocations(subnet_id, ip_address)` and `ports(network_id,
mac_address)` stay as the last line: a path that forgot the lock fails loudly instead of handing
out a duplicate. Allocations of different networks never wait on each other; a burst on one
network costs one short row lock per port (the whole allocation is a few indexed statements).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kumo.network import sync
from kumo.network.addressing import Pool, choose_address, parse_address, random_mac
from kumo.network.errors import (
    InvalidInput,
    IpAddressAlreadyAllocated,
    IpAddressGenerationFailure,
    MacAddressGenerationFailure,
    MacAddressInUse,
    NetworkNotFound,
)
from kumo.network.models import AllocationPool, IPAllocation, Network, Port, Subnet

MAC_ATTEMPTS = 16


@dataclass(frozen=True)
class FixedIpRequest:
    """One entry of a port's `fixed_ips`: a subnet, an address, or both."""

    subnet_id: str | None = None
    ip_address: str | None = None


def lock_network(session: Session, network_id: str) -> None:
    """Take the network's allocation lock for this transaction and bump its DHCP generation;
    NetworkNotFound when it was deleted meanwhile. Its DHCP host then has a sync pending
    (kumo/network/sync.py)."""
    done = session.execute(
        update(Network)
        .where(Network.id == network_id)
        .values(dhcp_generation=Network.dhcp_generation + 1)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount == 0:  # type: ignore[attr-defined]
        raise NetworkNotFound(network_id)
    sync.request(session, network_id)


def pools_of(session: Session, subnet_id: str) -> list[Pool]:
    rows = session.execute(
        select(AllocationPool.first_ip, AllocationPool.last_ip).where(AllocationPool.subnet_id == subnet_id)
    )
    pools = [Pool(ipaddress.IPv4Address(first), ipaddress.IPv4Address(last)) for first, last in rows]
    return sorted(pools, key=lambda p: p.first)


def taken_in(session: Session, subnet_id: str) -> set[str]:
    return set(session.scalars(select(IPAllocation.ip_address).where(IPAllocation.subnet_id == subnet_id)))


def cursor_of(session: Session, subnet_id: str) -> ipaddress.IPv4Address | None:
    """The subnet's cursor as committed (a fresh read under the lock, not the session's copy)."""
    text = session.scalar(select(Subnet.ip_cursor).where(Subnet.id == subnet_id))
    return ipaddress.IPv4Address(text) if text else None


def move_cursor(session: Session, subnet_id: str, address: str) -> None:
    """The subnet's next automatic choice comes after `address` (its updated_at stays: the
    subnet as users see it did not change)."""
    session.execute(
        update(Subnet)
        .where(Subnet.id == subnet_id)
        .values(ip_cursor=address, updated_at=Subnet.updated_at)
        .execution_options(synchronize_session=False)
    )


def next_free(session: Session, subnet_id: str, also_taken: Collection[str] = ()) -> str | None:
    """The subnet's next free address after its cursor (None when its pools are full); the
    cursor moves to it."""
    taken = taken_in(session, subnet_id)
    taken.update(also_taken)
    address = choose_address(pools_of(session, subnet_id), taken, cursor_of(session, subnet_id))
    if address is not None:
        move_cursor(session, subnet_id, address)
    return address


def _subnet_holding(subnets: Sequence[Subnet], address: ipaddress.IPv4Address) -> Subnet | None:
    for subnet in subnets:
        if address in ipaddress.ip_network(subnet.cidr):
            return subnet
    return None


def _check_explicit(subnet: Subnet, address: ipaddress.IPv4Address) -> None:
    network = ipaddress.ip_network(subnet.cidr)
    if address in (network.network_address, network.broadcast_address):
        raise InvalidInput(f"IP address {address} is not a valid IP for the specified subnet.")
    if subnet.gateway_ip is not None and str(address) == subnet.gateway_ip:
        raise IpAddressAlreadyAllocated(str(address), subnet.id)


def allocate(
    session: Session, network_id: str, subnets: Sequence[Subnet], requests: Sequence[FixedIpRequest] | None
) -> list[tuple[str, str]]:
    """(subnet_id, address) pairs for a port, chosen under `lock_network` (the caller took it).

    `requests` None: one address from the first subnet with a free one (Neutron's rule for IPv4;
    no subnets, no address). Otherwise one address per request: the one asked for (in a subnet of
    the network; 409 when taken; may lie outside the pools, never the gateway) or the next free
    one of the named subnet (`next_free`). Nothing is written here but the subnets' cursors:
    `record` writes the pairs."""
    by_id = {s.id: s for s in subnets}
    chosen: list[tuple[str, str]] = []
    if requests is None:
        for subnet in subnets:
            address = next_free(session, subnet.id)
            if address is not None:
                return [(subnet.id, address)]
        if subnets:
            raise IpAddressGenerationFailure(network_id)
        return []
    for request in requests:
        if request.ip_address is not None:
            wanted = parse_address(request.ip_address)
            if request.subnet_id is not None:
                named = by_id.get(request.subnet_id)
                if named is None or wanted not in ipaddress.ip_network(named.cidr):
                    raise InvalidInput(f"IP address {wanted} is not a valid IP for the specified subnet.")
                target = named
            else:
                found = _subnet_holding(subnets, wanted)
                if found is None:
                    raise InvalidInput(f"IP address {wanted} is not a valid IP for network {network_id}.")
                target = found
            _check_explicit(target, wanted)
            pair = (target.id, str(wanted))
            if pair in chosen or str(wanted) in taken_in(session, target.id):
                raise IpAddressAlreadyAllocated(str(wanted), target.id)
            chosen.append(pair)
        else:
            subnet_id = request.subnet_id or ""
            if subnet_id not in by_id:
                raise InvalidInput(f"Subnet {subnet_id} is not on network {network_id}.")
            free = next_free(session, subnet_id, {ip for sid, ip in chosen if sid == subnet_id})
            if free is None:
                raise IpAddressGenerationFailure(network_id)
            chosen.append((subnet_id, free))
    return chosen


def record(session: Session, network_id: str, port_id: str, pairs: Sequence[tuple[str, str]]) -> None:
    for subnet_id, address in pairs:
        session.add(
            IPAllocation(subnet_id=subnet_id, ip_address=address, port_id=port_id, network_id=network_id)
        )
    session.flush()


def mac_in_use(session: Session, network_id: str, mac: str, except_port: str | None = None) -> bool:
    query = select(Port.id).where(Port.network_id == network_id, Port.mac_address == mac)
    if except_port is not None:
        query = query.where(Port.id != except_port)
    return session.scalar(query.limit(1)) is not None


def choose_mac(session: Session, network_id: str, requested: str | None) -> str:
    """The requested MAC (409 MacAddressInUse when the network has it) or a fresh random one
    (503 MacAddressGenerationFailure after MAC_ATTEMPTS collisions), under `lock_network`."""
    if requested is not None:
        if mac_in_use(session, network_id, requested):
            raise MacAddressInUse(network_id, requested)
        return requested
    for _ in range(MAC_ATTEMPTS):
        mac = random_mac()
        if not mac_in_use(session, network_id, mac):
            return mac
    raise MacAddressGenerationFailure(network_id)
