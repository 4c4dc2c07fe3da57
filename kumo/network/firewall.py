"""Security groups on compute hosts: each host's ports with their rules resolved, which hosts a
change affects, and the `firewall_sync` work that keeps a host's firewall up to date (as
kumo/network/sync.py does for DHCP: generations, not events).

    register_host(session, host)             an agent that enforces security groups started
    unregister_host(session, host)           an agent that cannot enforce them started: no work
    request(session, hosts)                  what these hosts' firewalls hold changed
    hosts_of_ports(session, port_ids)        the hosts a change of these ports affects
    hosts_of_groups(session, group_ids)      the hosts a change of these groups' rules affects
    host_firewall(session, host, port_ids)   what the host's agent applies (its GET)
    HOOKS                                    a sync's result records its applied generation

The rule (`request`, called in the transaction of every change: a rule added or removed, a
port's groups, addresses, MAC, port security or binding changed, a port made or deleted):
- only hosts whose agent registered (`firewall_hosts`) get work: a fake hypervisor enforces
  nothing, and its ports are rows only; an agent of real guests that has no usable firewall
  unregisters its host (its guests run unfiltered, and it gets no `firewall_sync`);
- the host's generation moves (an UPDATE of its row, held until commit, so the changes of one
  host's firewall see each other's task) and at most one `firewall_sync` task is pending per
  host;
- a pending sync may already be running on its agent with a state read before this change:
  when its result reports an applied generation below the host's, the settle hook enqueues the
  next one. A burst of changes costs a few syncs; none is lost. A failed sync is retried by its
  agent (kumo/agent/firewall_sync.py: it asks for a new one, with backoff).

Locks: networks' rows first (kumo/network/ipam.py), hosts' rows last, hosts in name order. So
that no path can take them in another order, neither `request` nor a sync's result touches a
`firewall_hosts` row: they note what the transaction owes (`session.info`), and one pass just
before the outermost commit (a `before_commit` listener this module registers on every Session,
`_pay`) bumps, records and enqueues, host by host in name order, after every other lock the
transaction took. (`register_host` and `unregister_host` lock their one host's row at once:
their transactions take no network's lock.)

What a host's firewall holds (`host_firewall`): every port bound to it (vnic `normal`), plus the
ports the agent names (a guest it prepares before its ports are bound there: a migration's
destination), each with its MAC, addresses, port security and the rules of its groups. A rule's
remote group is resolved to the addresses of the group's member ports, so a port joining or
leaving a group changes the firewall of every host whose ports have a rule naming that group.
Named protocols are sent as IANA numbers (the agent's parser and iptables agree on those).

Lower layer: imports the work queue and networking's own tables, nothing above."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, delete, event, select, update
from sqlalchemy.orm import Session, SessionTransaction

from kumo.db import utcnow, wake_after_commit
from kumo.network.models import FirewallHost, IPAllocation, Port, PortSecurityGroup, SecurityGroupRule
from kumo.store.protocol import store_of
from kumo.work import queue
from kumo.work.kinds import EmptyPayload, TaskKind
from kumo.work.models import Task

WAKE_HOSTS = "kumo.firewall.wake_hosts"  # session.info key: hosts given a sync in the session
OWED = "kumo.firewall.owed"  # session.info key: what the transaction owes hosts (Owed)

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


@dataclass
class Owed:
    """What a transaction owes hosts' firewalls, paid just before it commits (`_pay`)."""

    changed: dict[str, str | None] = field(default_factory=dict)  # host → request id
    applied: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # host → (G, request id)


def _owed(session: Session) -> Owed:
    owed: Owed = session.info.setdefault(OWED, Owed())
    return owed


def register_host(session: Session, host: str) -> None:
    """`host`'s agent enforces security groups. It registers on every start, and whatever it
    held may be gone (a reboot flushes iptables): a sync is made pending."""
    store_of(session).insert_if_absent(
        session, FirewallHost, {"host": host, "generation": 0, "applied_generation": -1}, ["host"]
    )
    session.execute(
        update(FirewallHost)
        .where(FirewallHost.host == host)
        .values(registered_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    request(session, [host])


def unregister_host(session: Session, host: str) -> None:
    """`host`'s agent cannot enforce security groups (it has no usable firewall): the host gets
    no more `firewall_sync` work, and its pending syncs are cancelled. Task rows before the
    host's row, as a sync's result is settled (its task locked, then the host at commit); a sync
    a concurrent change enqueues between the two fails on the agent, once."""
    session.execute(
        update(Task)
        .where(Task.host == host, Task.state == "pending", Task.kind == str(TaskKind.FIREWALL_SYNC))
        .values(state="cancelled")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(FirewallHost).where(FirewallHost.host == host).execution_options(synchronize_session=False)
    )


def pending_sync(session: Session, host: str) -> str | None:
    """The id of the `firewall_sync` task pending for `host`, if there is one."""
    return session.scalar(
        select(Task.id)
        .where(Task.host == host, Task.state == "pending", Task.kind == str(TaskKind.FIREWALL_SYNC))
        .limit(1)
    )


def request(session: Session, hosts: Iterable[str], request_id: str | None = None) -> None:
    """What `hosts`' firewalls hold changed in this transaction: each registered one gets a new
    generation and a pending sync when the transaction commits (`_pay`). Hosts no agent
    registered are left alone."""
    changed = _owed(session).changed
    for host in hosts:
        if host:
            changed.setdefault(host, request_id)


def hosts_to_wake(session: Session) -> set[str]:
    """The hosts given a `firewall_sync` in this session (known once it committed). Their agents
    are woken once it commits, whichever path committed it (`kumo.db.wake_after_commit`: the
    network API, compute's security-group and interface actions, a server's delete, an agent's
    settled result); a lost wake-up costs the agent's next periodic re-read, never the sync."""
    return set(session.info.get(WAKE_HOSTS, ()))


def _pay(session: Session) -> None:
    """Before the outermost commit (not a savepoint's): what the transaction owes each host, in
    name order, after every other lock it took (the module's rule). A host's row is locked by
    the first UPDATE of it here (a new generation, or the applied one recorded), so a concurrent
    change of that host waits for this commit and then sees whether a sync is pending."""
    if session.in_nested_transaction():
        return
    owed: Owed | None = session.info.pop(OWED, None)
    if owed is None or not (owed.changed or owed.applied):
        return
    session.flush()  # a sync settled here is no longer pending: the next is not deduplicated
    woken: set[str] = session.info.setdefault(WAKE_HOSTS, set())
    for host in sorted(owed.changed.keys() | owed.applied.keys()):
        due = False
        request_id = owed.changed.get(host)
        if host in owed.changed:
            bumped = session.execute(
                update(FirewallHost)
                .where(FirewallHost.host == host)
                .values(generation=FirewallHost.generation + 1)
                .execution_options(synchronize_session=False)
            )
            if bumped.rowcount == 0:  # type: ignore[attr-defined]
                continue  # no agent enforces security groups there
            due = True
        if host in owed.applied:
            applied, reported_by = owed.applied[host]
            request_id = request_id or reported_by
            current = _record_applied(session, host, applied)
            if current is None:
                continue
            due = due or current > applied
        if due and pending_sync(session, host) is None:
            queue.enqueue(session, host, TaskKind.FIREWALL_SYNC, None, EmptyPayload(), request_id)
            woken.add(host)
            wake_after_commit(session, queue.host_key(host))  # whatever path committed it


def _record_applied(session: Session, host: str, generation: int) -> int | None:
    """Generations only move forward: a late report of an older one changes nothing. The UPDATE
    matches the row whatever it holds (its lock is taken); returns the host's generation, or
    None when the host is not registered."""
    recorded = session.execute(
        update(FirewallHost)
        .where(FirewallHost.host == host)
        .values(
            applied_generation=case(
                (FirewallHost.applied_generation < generation, generation),
                else_=FirewallHost.applied_generation,
            )
        )
        .execution_options(synchronize_session=False)
    )
    if recorded.rowcount == 0:  # type: ignore[attr-defined]
        return None
    return session.scalar(select(FirewallHost.generation).where(FirewallHost.host == host))


def _forget(session: Session, previous: SessionTransaction) -> None:
    """A transaction rolled back owes nothing (a savepoint's changes may linger: a sync too many
    costs one converge, never a wrong firewall)."""
    if previous.parent is None:
        session.info.pop(OWED, None)


event.listen(Session, "before_commit", _pay)
event.listen(Session, "after_soft_rollback", _forget)


class FirewallHooks:
    """A `firewall_sync` result `{"applied_generation": G}` is recorded when the transaction
    commits (`_pay`); when the host has moved past G meanwhile, the next sync is enqueued (see
    the module's rule). A failed sync records nothing here: its agent retries it."""

    def late(self, session: Session, task: Task, result: dict[str, Any]) -> None:
        return None

    def on_enqueued(self, session: Session, task: Task) -> None:
        return None

    def settle(self, session: Session, task: Task, ok: bool, result: dict[str, Any]) -> None:
        if task.kind != str(TaskKind.FIREWALL_SYNC) or not ok:
            return
        applied = result.get("applied_generation")
        if not isinstance(applied, int) or isinstance(applied, bool):
            return
        reports = _owed(session).applied
        seen = reports.get(task.host)
        if seen is None or seen[0] < applied:
            reports[task.host] = (applied, task.request_id)


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
