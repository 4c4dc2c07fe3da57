"""Security groups on compute hosts: each host's ports with their rules resolved, which hosts a
change affects, and the `firewall_sync` work that keeps a host's firewall up to date (as
kumo/network/sync.py does for DHCP: generations, not events).

    register_host(session, host)             an agent that enforces security groups started
    request(session, hosts)                  what these hosts' firewalls hold changed
    hosts_of_ports(session, port_ids)        the hosts a change of these ports affects
    hosts_of_groups(session, group_ids)      the hosts a change of these groups' rules affects
    host_firewall(session, host, port_ids)   what the host's agent applies (its GET)
    HOOKS                                    a sync's result records its applied generation

The rule (`request`, called in the transaction of every change: a rule added or removed, a
port's groups, addresses, MAC, port security or binding changed, a port made or deleted):
- only hosts whose agent registered (`firewall_hosts`) get work: a fake hypervisor enforces
  nothing, and its ports are rows only;
- the host's generation moves (an UPDATE of its row, held until commit, so the changes of one
  host's firewall run `request` one after another and see each other's task) and at most one
  `firewall_sync` task is pending per host;
- a pending sync may already be running on its agent with a state read before this change:
  when its result reports an applied generation below the host's, the settle hook enqueues the
  next one. A burst of changes costs a few syncs; none is lost.

What a host's firewall holds (`host_firewall`): every port bound to it (vnic `normal`), plus the
ports the agent names (a guest it prepares before its ports are bound there: a migration's
destination), each with its MAC, addresses, port security and the rules of its groups. A rule's
remote group is resolved to the addresses of the group's member ports, so a port joining or
leaving a group changes the firewall of every host whose ports have a rule naming that group.
Named protocols are sent as IANA numbers (the agent's parser and iptables agree on those).

Locks: networks' rows first (kumo/network/ipam.py), hosts' rows last, hosts in name order.
Lower layer: imports the work queue and networking's own tables, nothing above."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kumo.db import utcnow
from kumo.network.models import FirewallHost, IPAllocation, Port, PortSecurityGroup, SecurityGroupRule
from kumo.store.protocol import store_of
from kumo.work import queue
from kumo.work.kinds import EmptyPayload, TaskKind
from kumo.work.models import Task

WAKE_HOSTS = "kumo.firewall.wake_hosts"  # session.info key: hosts given a sync in the session

# neutron-lib's constants.IP_PROTOCOL_MAP: what a rule's named protocol means on the wire.
IP_PROTOCOL_NUMBERS: Mapping[str, int] = {
    "ah": 51,
    "dccp": 33,
    "egp": 8,
    "esp": 50,
    "gre": 47,
    "icmp": 1,
    "icmpv6": 58,
    "igmp": 2,
    "ipip": 4,
    "ipv6-encap": 41,
    "ipv6-frag": 44,
    "ipv6-icmp": 58,
    "ipv6-nonxt": 59,
    "ipv6-opts": 60,
    "ipv6-route": 43,
    "ospf": 89,
    "pgm": 113,
    "rsvp": 46,
    "sctp": 132,
    "tcp": 6,
    "udp": 17,
    "udplite": 136,
    "vrrp": 112,
}


def protocol_number(protocol: str | None) -> str | None:
    """A stored rule's protocol as the agent takes it: None (any) or a number "0".."255"."""
    if protocol is None:
        return None
    number = IP_PROTOCOL_NUMBERS.get(protocol.lower())
    return str(number) if number is not None else str(int(protocol))


# -- the work ---------------------------------------------------------------------------------


def register_host(session: Session, host: str) -> str | None:
    """`host`'s agent enforces security groups. It registers on every start, and whatever it
    held may be gone (a reboot flushes iptables): a sync is made pending (the id of the task
    enqueued now, or None when one was pending already)."""
    store_of(session).insert_if_absent(
        session, FirewallHost, {"host": host, "generation": 0, "applied_generation": -1}, ["host"]
    )
    session.execute(
        update(FirewallHost)
        .where(FirewallHost.host == host)
        .values(registered_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return request(session, [host]).get(host)


def pending_sync(session: Session, host: str) -> str | None:
    """The id of the `firewall_sync` task pending for `host`, if there is one."""
    return session.scalar(
        select(Task.id)
        .where(Task.host == host, Task.state == "pending", Task.kind == str(TaskKind.FIREWALL_SYNC))
        .limit(1)
    )


def request(session: Session, hosts: Iterable[str], request_id: str | None = None) -> dict[str, str]:
    """A new generation and a pending sync for each registered host of `hosts`; returns the
    tasks enqueued now (host → task id). Hosts no agent registered are left alone."""
    enqueued: dict[str, str] = {}
    woken: set[str] = session.info.setdefault(WAKE_HOSTS, set())
    for host in sorted({h for h in hosts if h}):
        bumped = session.execute(
            update(FirewallHost)
            .where(FirewallHost.host == host)
            .values(generation=FirewallHost.generation + 1)
            .execution_options(synchronize_session=False)
        )
        if bumped.rowcount == 0:  # type: ignore[attr-defined]
            continue
        if pending_sync(session, host) is None:
            enqueued[host] = queue.enqueue(
                session, host, TaskKind.FIREWALL_SYNC, None, EmptyPayload(), request_id
            ).id
            woken.add(host)
    return enqueued


def hosts_to_wake(session: Session) -> set[str]:
    """The hosts given a `firewall_sync` in this session: whoever commits it wakes their agents
    (a lost wake-up costs the agent's next periodic re-read, never the sync)."""
    return set(session.info.get(WAKE_HOSTS, ()))


def record_applied(session: Session, host: str, generation: int) -> None:
    """Generations only move forward: a late report of an older one changes nothing."""
    session.execute(
        update(FirewallHost)
        .where(FirewallHost.host == host, FirewallHost.applied_generation < generation)
        .values(applied_generation=generation)
        .execution_options(synchronize_session=False)
    )


class FirewallHooks:
    """A `firewall_sync` result `{"applied_generation": G}` is recorded on settling; when the
    host has moved past G meanwhile, the next sync is enqueued (see the module's rule)."""

    def on_enqueued(self, session: Session, task: Task) -> None:
        return None

    def settle(self, session: Session, task: Task, ok: bool, result: dict[str, Any]) -> None:
        if task.kind != str(TaskKind.FIREWALL_SYNC) or not ok:
            return  # a failed sync is not retried in a loop: the next change or start makes one
        applied = result.get("applied_generation")
        if not isinstance(applied, int) or isinstance(applied, bool):
            return
        record_applied(session, task.host, applied)
        current = session.scalar(select(FirewallHost.generation).where(FirewallHost.host == task.host))
        if current is not None and current > applied:
            session.flush()  # this task is settled: the next one is not deduplicated against it
            if pending_sync(session, task.host) is None:
                payload = EmptyPayload()
                queue.enqueue(session, task.host, TaskKind.FIREWALL_SYNC, None, payload, task.request_id)


HOOKS = FirewallHooks()


# -- which hosts a change affects -------------------------------------------------------------


def hosts_of_groups(session: Session, group_ids: Collection[str]) -> set[str]:
    """The hosts of the bound ports in these groups: where a change of their rules lands."""
    if not group_ids:
        return set()
    rows = session.scalars(
        select(Port.binding_host_id)
        .join(PortSecurityGroup, PortSecurityGroup.port_id == Port.id)
        .where(
            PortSecurityGroup.security_group_id.in_(list(group_ids)),
            Port.binding_host_id != "",
            Port.binding_vnic_type == "normal",
        )
        .distinct()
    )
    return set(rows)


def groups_naming(session: Session, group_ids: Collection[str]) -> set[str]:
    """The groups that have a rule whose remote group is one of `group_ids`."""
    if not group_ids:
        return set()
    rows = session.scalars(
        select(SecurityGroupRule.security_group_id)
        .where(SecurityGroupRule.remote_group_id.in_(list(group_ids)))
        .distinct()
    )
    return set(rows)


def hosts_of_ports(session: Session, port_ids: Collection[str]) -> set[str]:
    """Where a change of these ports (their existence, addresses, MAC, groups, port security,
    binding) lands: their own hosts, and the hosts of every port with a rule whose remote group
    is one of theirs (the ports' addresses are that rule's)."""
    if not port_ids:
        return set()
    ids = list(port_ids)
    hosts = set(
        session.scalars(
            select(Port.binding_host_id).where(
                Port.id.in_(ids), Port.binding_host_id != "", Port.binding_vnic_type == "normal"
            )
        )
    )
    groups = set(
        session.scalars(select(PortSecurityGroup.security_group_id).where(PortSecurityGroup.port_id.in_(ids)))
    )
    return hosts | hosts_of_groups(session, groups_naming(session, groups))


# -- what a host's firewall holds -------------------------------------------------------------


@dataclass(frozen=True)
class PortRow:
    id: str
    mac_address: str
    port_security_enabled: bool
    tap: str


@dataclass(frozen=True)
class RuleRow:
    direction: str
    ethertype: str
    protocol: str | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None
    remote_group_id: str | None


def resolve(
    ports: Sequence[PortRow],
    addresses: Mapping[str, Sequence[str]],
    groups_of: Mapping[str, Sequence[str]],
    rules_of: Mapping[str, Sequence[RuleRow]],
    members: Mapping[str, Sequence[str]],
) -> list[dict[str, Any]]:
    """Ports → the agent's firewall contract (kumo/agent/network/spec.py:port_firewall_from_json):
    each port's rules are its groups' (duplicates once), a remote group resolved to its members'
    addresses (`members`: group → addresses; a group with none matches nothing), protocols as
    numbers. A port without port security carries no rules: it is not filtered."""
    out = []
    for port in ports:
        rules: list[dict[str, Any]] = []
        if port.port_security_enabled:
            for group_id in groups_of.get(port.id, ()):
                for rule in rules_of.get(group_id, ()):
                    entry: dict[str, Any] = {
                        "direction": rule.direction,
                        "ethertype": rule.ethertype,
                        "protocol": protocol_number(rule.protocol),
                        "port_range_min": rule.port_range_min,
                        "port_range_max": rule.port_range_max,
                        "remote_ip_prefix": rule.remote_ip_prefix,
                    }
                    if rule.remote_group_id is not None:
                        entry["remote_ips"] = sorted(set(members.get(rule.remote_group_id, ())))
                    if entry not in rules:
                        rules.append(entry)
        out.append(
            {
                "id": port.id,
                "mac_address": port.mac_address,
                "fixed_ips": [{"ip_address": ip} for ip in addresses.get(port.id, ())],
                "port_security_enabled": port.port_security_enabled,
                "tap": port.tap,
                "rules": rules,
            }
        )
    return out


def _addresses(session: Session, port_ids: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {pid: [] for pid in port_ids}
    if port_ids:
        rows = session.execute(
            select(IPAllocation.port_id, IPAllocation.ip_address)
            .where(IPAllocation.port_id.in_(port_ids))
            .order_by(IPAllocation.ip_address)
        )
        for port_id, address in rows:
            found[port_id].append(address)
    return found


def host_firewall(session: Session, host: str, port_ids: Collection[str] = ()) -> dict[str, Any]:
    """`{"host", "generation", "ports": [...]}`: what `host`'s firewall must hold now (the
    module's rule), read in the caller's one transaction with the generation it reflects."""
    generation = session.scalar(select(FirewallHost.generation).where(FirewallHost.host == host))
    bound = (Port.binding_host_id == host) & (Port.binding_vnic_type == "normal")
    where = bound | Port.id.in_(list(port_ids)) if port_ids else bound
    rows = list(session.scalars(select(Port).where(where).order_by(Port.id)))
    ids = [p.id for p in rows]
    groups_of: dict[str, list[str]] = {pid: [] for pid in ids}
    if ids:
        for port_id, group_id in session.execute(
            select(PortSecurityGroup.port_id, PortSecurityGroup.security_group_id)
            .where(PortSecurityGroup.port_id.in_(ids))
            .order_by(PortSecurityGroup.security_group_id)
        ):
            groups_of[port_id].append(group_id)
    group_ids = sorted({g for gs in groups_of.values() for g in gs})
    rules_of: dict[str, list[RuleRow]] = {gid: [] for gid in group_ids}
    if group_ids:
        for rule in session.scalars(
            select(SecurityGroupRule)
            .where(SecurityGroupRule.security_group_id.in_(group_ids))
            .order_by(SecurityGroupRule.created_at, SecurityGroupRule.id)
        ):
            rules_of[rule.security_group_id].append(
                RuleRow(
                    rule.direction,
                    rule.ethertype,
                    rule.protocol,
                    rule.port_range_min,
                    rule.port_range_max,
                    rule.remote_ip_prefix,
                    rule.remote_group_id,
                )
            )
    remote = sorted({r.remote_group_id for rs in rules_of.values() for r in rs if r.remote_group_id})
    members: dict[str, list[str]] = {gid: [] for gid in remote}
    if remote:
        for group_id, address in session.execute(
            select(PortSecurityGroup.security_group_id, IPAllocation.ip_address)
            .join(IPAllocation, IPAllocation.port_id == PortSecurityGroup.port_id)
            .where(PortSecurityGroup.security_group_id.in_(remote))
        ):
            members[group_id].append(address)
    ports = [PortRow(p.id, p.mac_address, p.port_security_enabled, "tap" + p.id[:11]) for p in rows]
    return {
        "host": host,
        "generation": generation if generation is not None else 0,
        "ports": resolve(ports, _addresses(session, ids), groups_of, rules_of, members),
    }
