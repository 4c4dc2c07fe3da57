"""Who serves a network's DHCP and metadata, and the `network_sync` work that keeps its host
up to date (networking notes §3.6: generations, not events).

    register_agent(session, host)            an agent started with `--network-host`
    request(session, network_id)             the network's generation moved: make sure a sync is pending
    HOOKS                                    the work hooks: a sync's result records its applied generation

The rule (`request`, called by `ipam.lock_network` in the transaction that bumps the generation;
`networks.delete_network` takes that lock too, so its host finds the network gone and removes it):
- the network's host is the one assigned; else the network agent registered most recently
  (agents re-register on every start, so that is the one last seen starting; kumo has one per
  cloud for now), assigned now; with no network agent at all nothing is enqueued (a cloud of
  fake hosts has no data plane: its networks are rows only);
- at most one `network_sync` task is pending per (host, network). The generation bump that
  precedes `request` is an UPDATE of the network's row, held until commit, so concurrent
  changes of one network run `request` one after the other and see each other's task.
- A pending sync may already be running on its agent, holding a state read before this
  change: when its result is settled with an applied generation below the network's, the
  settle hook enqueues the next one. So a burst of changes costs a few syncs, none is lost.

Lower layer: imports the work queue and networking's own tables, nothing above."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kumo.db import utcnow, wake_after_commit
from kumo.network.models import Network, NetworkAgent, NetworkHost
from kumo.work import queue
from kumo.work.kinds import NetworkSyncPayload, TaskKind
from kumo.work.models import Task


def register_agent(session: Session, host: str) -> int:
    """`host`'s agent serves networks; registering again marks it the most recent. An agent
    registers on every start, and whatever it served may be gone (a reboot takes namespaces and
    dnsmasq with it): every network it serves, and every network no one serves yet, gets a sync
    (deduplicated as always). Returns how many were enqueued."""
    agent = session.get(NetworkAgent, host, with_for_update=True)
    if agent is None:
        session.add(NetworkAgent(host=host))
    else:
        agent.registered_at = utcnow()
    session.flush()
    served = select(NetworkHost.network_id)
    networks = session.scalars(
        select(Network.id)
        .where(Network.id.in_(served.where(NetworkHost.host == host)) | Network.id.not_in(served))
        .order_by(Network.id)
    )
    return sum(request(session, network_id) is not None for network_id in list(networks))


def pick_agent(session: Session) -> str | None:
    """The network agent registered most recently, or None when there is none."""
    return session.scalar(
        select(NetworkAgent.host).order_by(NetworkAgent.registered_at.desc(), NetworkAgent.host).limit(1)
    )


def host_for(session: Session, network_id: str) -> str | None:
    """The network's DHCP host: the one assigned, else a network agent assigned now (or None)."""
    current = session.scalar(select(NetworkHost.host).where(NetworkHost.network_id == network_id).limit(1))
    if current is not None:
        return current
    host = pick_agent(session)
    if host is None:
        return None
    session.add(NetworkHost(network_id=network_id, host=host))
    session.flush()
    return host


def pending_sync(session: Session, host: str, network_id: str) -> str | None:
    """The id of the `network_sync` task pending for (host, network), if there is one."""
    rows = session.execute(
        select(Task.id, Task.payload).where(
            Task.host == host, Task.state == "pending", Task.kind == str(TaskKind.NETWORK_SYNC)
        )
    )
    for task_id, payload in rows:
        if isinstance(payload, dict) and payload.get("network_id") == network_id:
            return str(task_id)
    return None


def request(session: Session, network_id: str, request_id: str | None = None) -> str | None:
    """A sync of the network is pending on its host after this (the id of the task enqueued now,
    or None when one was pending already or no host serves networks)."""
    host = host_for(session, network_id)
    if host is None or pending_sync(session, host, network_id) is not None:
        return None
    payload = NetworkSyncPayload(network_id)
    return queue.enqueue(session, host, TaskKind.NETWORK_SYNC, None, payload, request_id).id


def dhcp_key(network_id: str) -> str:
    """The wake-up key of a network's applied DHCP generation (its hypervisors' long polls)."""
    return f"dhcp:{network_id}"


def record_applied(session: Session, network_id: str, host: str, generation: int) -> None:
    """Generations only move forward: a late report of an older one changes nothing. Once the
    transaction commits, the network's DHCP long polls are woken (`dhcp_key`)."""
    wake_after_commit(session, dhcp_key(network_id))
    session.execute(
        update(NetworkHost)
        .where(
            NetworkHost.network_id == network_id,
            NetworkHost.host == host,
            NetworkHost.applied_generation < generation,
        )
        .values(applied_generation=generation)
        .execution_options(synchronize_session=False)
    )


class SyncHooks:
    """A `network_sync` result `{"applied_generation": G}` is recorded on settling; when the
    network has moved past G meanwhile, the next sync is enqueued (see the module's rule)."""

    def late(self, session: Session, task: Task, result: dict[str, Any]) -> None:
        return None

    def on_enqueued(self, session: Session, task: Task) -> None:
        return None

    def settle(self, session: Session, task: Task, ok: bool, result: dict[str, Any]) -> None:
        if task.kind != str(TaskKind.NETWORK_SYNC) or not ok:
            return
        network_id = (task.payload or {}).get("network_id")
        applied = result.get("applied_generation")
        if not isinstance(network_id, str) or not isinstance(applied, int) or isinstance(applied, bool):
            return
        record_applied(session, network_id, task.host, applied)
        current = session.scalar(select(Network.dhcp_generation).where(Network.id == network_id))
        if current is not None and current > applied:
            session.flush()  # this task is settled: the next one is not deduplicated against it
            request(session, network_id, task.request_id)


HOOKS = SyncHooks()
