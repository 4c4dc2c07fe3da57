"""The scheduling loop of an API worker: take BUILD/scheduling instances in batches, read the
fleet once per batch, run the pure core (kumo.scheduler), claim with a generation
compare-and-swap, and hand a spawn task to the chosen host's agent.

Crash safety: an instance leaves `scheduling` only in the same transaction that claims its
resources and writes its spawn task. A worker that dies mid-batch leaves the rest in
`scheduling` for the next pass; on PostgreSQL several workers share pending instances through
SELECT … FOR UPDATE SKIP LOCKED, and lose nothing but a pass to a claim conflict.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from traceback import format_exception
from typing import Any

from sqlalchemy import Integer, Select, bindparam, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from kumo.compute import lifecycle as lc
from kumo.compute import lifecycle_apply, server_groups
from kumo.compute.fleet_snapshot import load_snapshot
from kumo.compute.lifecycle import migration_consumer
from kumo.compute.lifecycle_apply import Requester, apply, state_of
from kumo.compute.models import Instance, InstanceAction, InstanceActionEvent, ServerGroup
from kumo.compute.node_hosts import may_be_node
from kumo.compute.states import SCHEDULE_EVENT, TaskState, VmState
from kumo.config import Settings, get_settings
from kumo.db import utcnow
from kumo.db.transient import describe, is_transient, without_parameters
from kumo.errors import BadRequest, ClaimConflict, Conflict, KumoError, NotFound
from kumo.logs import logged_as, request_id_var
from kumo.metrics import (
    CLAIM_CONFLICTS,
    CLAIM_SECONDS,
    SCHEDULE_CLAIM_SECONDS,
    SCHEDULE_FAILURES,
    SCHEDULE_SECONDS,
)
from kumo.network import servers as server_networking
from kumo.placement import claims
from kumo.runtime import FleetPrefilter, Runtime
from kumo.scheduler.core import Candidate, Decision, schedule
from kumo.scheduler.request import GroupSpec, ScheduleRequest
from kumo.scheduler.snapshot import Snapshot
from kumo.scheduler.weighers import SPREAD, SchedulerConfig
from kumo.store.protocol import PlacementPlan, Store, database_store, store_of
from kumo.validation import MAX_INT, int_text
from kumo.work.kinds import SpawnPayload, TaskKind

log = logging.getLogger(__name__)


def _as_tuple(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return (str(value),)


def resources_of(flavor: dict[str, Any]) -> dict[str, int]:
    """Flavor → resource amounts; `resources:<CLASS>=N` extra specs override, as in Nova.
    Every amount is an integer from 0 to MAX_INT (placement's 32-bit columns), or BadRequest
    names the field or spec that is not (a flavor stored before its extra specs were validated
    on write)."""
    resources = {
        "VCPU": _amount("vcpus", flavor.get("vcpus")),
        "MEMORY_MB": _amount("ram", flavor.get("ram")),
        "DISK_GB": _amount("disk", flavor.get("disk", 0)) + _amount("ephemeral", flavor.get("ephemeral", 0)),
    }
    for key, value in dict(flavor.get("extra_specs") or {}).items():
        if key.startswith("resources:"):
            resources[key.split(":", 1)[1]] = _amount(f"extra spec {key}", value)
    return {rc: amount for rc, amount in resources.items() if amount > 0}


def _amount(field: str, value: object) -> int:
    """A flavor's amount as an integer in placement's range; BadRequest naming `field` if not.
    A string (an extra spec) is read by the rule `extra_specs.resource_amount` checks on write
    (`kumo.validation.int_text`), so " 7", "1_0" or "٣" stored before that check are refused here too."""
    if isinstance(value, bool):
        amount = None
    elif isinstance(value, int):
        amount = value
    else:
        amount = int_text(value)
    if amount is None or not 0 <= amount <= MAX_INT:
        raise BadRequest(
            f"Invalid flavor {field}={value!r}: the amount must be an integer from 0 to {MAX_INT}."
        )
    return amount


def request_for(instance: Instance, group: ServerGroup | None) -> ScheduleRequest:
    hints = instance.scheduler_hints or {}
    return ScheduleRequest(
        instance_uuid=instance.uuid,
        project_id=instance.project_id,
        resources=resources_of(instance.flavor),
        flavor_id=instance.flavor.get("id"),
        flavor_extra_specs=dict(instance.flavor.get("extra_specs") or {}),
        availability_zone=instance.requested_az,
        group=GroupSpec(group.uuid, group.policy, group.rules or {}) if group else None,
        same_host=_as_tuple(hints.get("same_host")),
        different_host=_as_tuple(hints.get("different_host")),
        force_host=hints.get("force_host"),
        requested_host=hints.get("requested_host"),
        force_disabled=hints.get("force_host") is not None,
    )


def scheduler_config(settings: Settings) -> SchedulerConfig:
    """Spreading weighs a sample of PREFILTER_SAMPLE feasible hosts per instance (each instance
    of a pass walks from its own start); packing wants the fullest host of all it read."""
    sample = PREFILTER_SAMPLE if settings.scheduler_weigher == SPREAD else None
    return SchedulerConfig(strategy=settings.scheduler_weigher, feasible_limit=sample)


def _pending(session: Session, limit: int, skip_locked: bool) -> list[Instance]:
    """The instances waiting to be scheduled, oldest first. With `skip_locked` (PostgreSQL)
    they stay locked while this pass reads the fleet, so another worker's pass started
    meanwhile takes other instances (or none) instead of reading the fleet for the same ones."""
    return list(session.scalars(_PENDING_LOCKED if skip_locked else _PENDING, {"limit": limit}))


# Built once: every pass of every scheduler runs them.
_PENDING = (
    select(Instance)
    .where(
        Instance.vm_state == VmState.BUILDING,
        Instance.task_state == TaskState.SCHEDULING,
        Instance.deleted.is_(False),
    )
    .order_by(Instance.id)
    .limit(bindparam("limit", type_=Integer))
)
_PENDING_LOCKED = _PENDING.with_for_update(skip_locked=True)


@dataclass(frozen=True)
class OpenEvent:
    """The unfinished scheduling event of an instance's create action."""

    id: int
    action_id: int
    request_id: str


def _open_events(session: Session, instance_uuids: Sequence[str], event: str) -> dict[str, OpenEvent]:
    """Instance uuid -> its unfinished `event` (the newest), for a whole pass in one query."""
    statement = _open_events_statement(store_of(session))
    rows = session.connection().execute(statement, {"uuids": sorted(set(instance_uuids)), "event": event})
    return {
        uuid: OpenEvent(event_id, action_id, request_id or "-")
        for uuid, event_id, action_id, request_id in rows
    }


@cache
def _open_events_statement(store: Store) -> Select[str, int, int, str]:
    return (
        select(
            InstanceAction.instance_uuid,
            InstanceActionEvent.id,
            InstanceActionEvent.action_id,
            InstanceAction.request_id,
        )
        .join(InstanceAction, InstanceAction.id == InstanceActionEvent.action_id)
        .where(
            store.one_of_param(InstanceAction.instance_uuid, "uuids"),
            InstanceActionEvent.event == bindparam("event"),
            InstanceActionEvent.finish_time.is_(None),
        )
        .order_by(InstanceActionEvent.id)
    )


class _PassEvents:
    """The open scheduling event of each instance of a pass. A hypervisor's placement is a plan
    whose commit finds its instance's event itself (Store.commit_placement), so they are read,
    for the whole pass in one query, only when a placement first needs one (a baremetal node,
    a soft group, no valid host)."""

    def __init__(self, instance_uuids: Sequence[str]) -> None:
        self._instance_uuids = instance_uuids
        self._events: dict[str, OpenEvent] | None = None

    def of(self, session: Session, instance_uuid: str) -> OpenEvent | None:
        if self._events is None:
            self._events = _open_events(session, self._instance_uuids, SCHEDULE_EVENT)
        return self._events.get(instance_uuid)


def schedule_pending(rt: Runtime, batch: int = 200, only: str | None = None) -> tuple[int, set[str]]:
    """One pass: read the pending instances and the fleet once, then place each instance in a
    transaction of its own (its row locked with SKIP LOCKED on PostgreSQL, so workers never
    place one instance twice and never hold more than one provider lock: no deadlocks).
    The read holds the pending rows (SKIP LOCKED too) and places the first of them in its own
    transaction (a pass of one is one transaction); it takes no other lock before that, so a
    delete of a pending instance waits for the read at most. Returns how many instances were
    handled and which hosts got work. `only`: a pass of that one instance.

    One request never stops the others: a request whose own data makes building, reading for,
    scheduling or placing it raise fails alone (ERROR with a fault that says why, see _fail),
    and the pass goes on; a pass whose shared read raises is run again as passes of one, so the
    read is blamed on the one request that breaks it. An error of the database's own
    (kumo.db.transient) ends the pass instead, leaving its instances pending for the next.

    The placements commit asynchronously (`durable=False`, unless the settings'
    scheduler_asynchronous_commit is off): a commit waits for no WAL flush, and a database
    crash that loses one leaves its server pending, to be placed again. The spawn task it wrote
    reaches an agent only through the task polls, which make it durable first
    (kumo.agent.service)."""
    woken: set[str] = set()
    durable = not rt.settings.scheduler_asynchronous_commit
    read_started = time.perf_counter()
    config = scheduler_config(rt.settings)
    skip_locked = database_store(rt.db).skip_locked
    try:
        with rt.db.transaction(durable) as session:
            pending = (
                _pending(session, batch, skip_locked)
                if only is None
                else _pending_one(session, only, skip_locked)
            )
            if not pending:
                return 0, woken
            requests = _requests(session, pending)
            if not requests:
                return len(pending), woken
            work = _read_pass(session, rt, requests, read_started)
            # The first is placed in the read's transaction, unless that also holds failures.
            first = requests[0] if len(requests) == len(pending) else None
            if first is not None:
                started = time.perf_counter()
                with _alone(first.instance_uuid):
                    work.snapshot = _place(
                        session, pending[0], first, work.snapshot, config, woken, work.events, work.reads
                    )
    except _ReadFailed as failed:
        if only is None:
            return _one_by_one(rt, failed.instance_uuids)
        _fail_alone(rt, durable, _RequestFailed(only, failed.error))  # its read alone raised
        return 1, woken
    except _RequestFailed as failed:  # the first one's: rolled back with the read
        _fail_alone(rt, durable, failed)
    else:
        if first is not None:  # committed: its share of the pass's read, the core, the claim and the commit
            SCHEDULE_CLAIM_SECONDS.observe(work.read_share + time.perf_counter() - started)
    for request in requests if first is None else requests[1:]:
        started = time.perf_counter()
        try:
            with rt.db.transaction(durable) as session:
                instance = _lock_pending(session, request.instance_uuid, skip_locked)
                if instance is None:
                    continue  # deleted meanwhile, or another worker has it
                with _alone(request.instance_uuid):
                    work.snapshot = _place(
                        session, instance, request, work.snapshot, config, woken, work.events, work.reads
                    )
        except _RequestFailed as failed:
            _fail_alone(rt, durable, failed)
            continue
        SCHEDULE_CLAIM_SECONDS.observe(work.read_share + time.perf_counter() - started)
    return len(pending), woken


def _pending_one(session: Session, instance_uuid: str, skip_locked: bool) -> list[Instance]:
    found = _lock_pending(session, instance_uuid, skip_locked)
    return [] if found is None else [found]


def _one_by_one(rt: Runtime, instance_uuids: Sequence[str]) -> tuple[int, set[str]]:
    """The pass's shared read raised for a reason of no one request's that the database is not
    to blame for: the instances, each in a pass of its own (one that raises again fails alone)."""
    log.warning("a pass of %d instances failed to read; scheduling them one by one", len(instance_uuids))
    handled, woken = 0, set()
    for instance_uuid in instance_uuids:
        count, hosts = schedule_pending(rt, only=instance_uuid)
        handled += count
        woken |= hosts
    return handled, woken


def _requests(session: Session, pending: Sequence[Instance]) -> list[ScheduleRequest]:
    """The pending instances' requests, in order; an instance whose request cannot be built
    from its own data (a flavor's bad extra spec, a malformed hint) fails here, alone."""
    group_ids = {i.server_group for i in pending if i.server_group}
    groups = (
        {g.uuid: g for g in session.scalars(select(ServerGroup).where(ServerGroup.uuid.in_(group_ids)))}
        if group_ids
        else {}
    )
    requests = []
    for instance in pending:
        try:
            with _alone(instance.uuid):
                requests.append(request_for(instance, groups.get(instance.server_group or "")))
        except _RequestFailed as failed:
            _fail(session, instance, failed)
    return requests


@dataclass
class _PassWork:
    """What the read of a pass gives its placements: the snapshot they place on (replaced
    after each claim), the open events, the wider reads, each placement's share of the read."""

    snapshot: Snapshot
    events: _PassEvents
    reads: _PassReads
    read_share: float


def _read_pass(
    session: Session, rt: Runtime, requests: Sequence[ScheduleRequest], read_started: float
) -> _PassWork:
    """The pass's shared read. An error of the snapshot's read that is not the database's
    raises _ReadFailed (the caller retries each request in a pass of its own, where such an
    error is its own); the events and the fleet index's sync read nothing of the requests'."""
    events = _PassEvents([r.instance_uuid for r in requests])
    rt.fleet.sync(session, FLEET_SYNC_MAX_AGE)
    try:
        snapshot, partial = pass_snapshot(session, rt.settings, requests, rt.fleet)
    except Exception as error:
        if is_transient(error):
            raise
        raise _ReadFailed([r.instance_uuid for r in requests], error) from error
    read_share = (time.perf_counter() - read_started) / len(requests)
    return _PassWork(snapshot, events, _PassReads(rt.settings, requests, partial, rt.fleet), read_share)


class _ReadFailed(Exception):
    """A pass's shared read raised, not for the database's sake: retry its instances alone."""

    def __init__(self, instance_uuids: Sequence[str], error: Exception) -> None:
        super().__init__(f"the read for {len(instance_uuids)} instances failed: {error}")
        self.instance_uuids = list(instance_uuids)
        self.error = error


class _RequestFailed(Exception):
    """An instance's own data made its scheduling raise: it fails alone (_fail)."""

    def __init__(self, instance_uuid: str, error: Exception) -> None:
        self.instance_uuid = instance_uuid
        self.message = fault_message(error)
        self.trace = "".join(format_exception(without_parameters(error)))
        super().__init__(f"{instance_uuid}: {self.message}")


def fault_message(error: Exception) -> str:
    """What an instance's fault says of the error that stopped its scheduling: a kumo error's
    own message (it names the bad field), else the exception's type and message (a database
    error's without its statement and parameters)."""
    if isinstance(error, KumoError):
        return error.message
    return describe(error)


@contextmanager
def _alone(instance_uuid: str) -> Iterator[None]:
    """Blame what raises inside on the instance's own data (_RequestFailed), unless the
    database is to blame (kumo.db.transient): that ends the pass, the instance stays pending."""
    try:
        yield
    except Exception as error:
        if is_transient(error):
            raise
        raise _RequestFailed(instance_uuid, error) from error


def _fail(session: Session, instance: Instance, failed: _RequestFailed) -> None:
    """As _no_valid_host, for a request its own data made raise: ERROR with a fault that says
    why, its scheduling event finished with the error and the traceback, and no allocation
    left for it (any it had was written in the transaction that raised, or never)."""
    event = _open_events(session, [instance.uuid], SCHEDULE_EVENT).get(instance.uuid)
    with logged_as(event.request_id if event is not None else "-"):
        log.error("cannot schedule %s: %s", instance.uuid, failed.message)
    change = lc.scheduling_failed(state_of(instance), failed.message, failed.trace, event)
    apply(session, instance, change, Requester(None))


def _fail_alone(rt: Runtime, durable: bool, failed: _RequestFailed) -> None:
    """_fail in a transaction of its own, after the one that raised rolled back."""
    with rt.db.transaction(durable) as session:
        instance = _lock_pending(session, failed.instance_uuid, skip_locked=database_store(rt.db).skip_locked)
        if instance is not None:
            _fail(session, instance, failed)


# The scheduler loop keeps the fleet index current between passes (sync_fleet); a pass brings it
# up to date itself only when that was longer ago than this. It is a prefilter: an older index
# costs a worse sample at most (see kumo.compute.fleet_index).
FLEET_SYNC_MAX_AGE = 2.0


def sync_fleet(rt: Runtime) -> None:
    """Bring the worker's fleet index up to date, off any request's path (the loop calls it
    when a pass found nothing to do)."""
    with rt.db.read() as session:
        rt.fleet.sync(session)


# Nova's max_placement_results: the scheduler weighs at most this many candidates per request shape.
PREFILTER_LIMIT = 1000
# And at least PREFILTER_FIRST, or PREFILTER_PER_REQUEST per request of the shape in the pass: the
# best of a random sample of fitting hosts spreads load nearly as well as the best of all of them
# (the "power of d choices"; the Kubernetes scheduler's percentageOfNodesToScore samples
# likewise), and the read, which grows with the sample, is most of a lone request's pass. A
# request the sample cannot place widens the read step by step:
# PREFILTER_SAMPLE hosts, PREFILTER_LIMIT, then the whole fleet (_PassReads.wider).
PREFILTER_FIRST = 16
PREFILTER_SAMPLE = 64
PREFILTER_PER_REQUEST = 8


def prefilter_limit(requests_of_shape: int) -> int:
    return min(PREFILTER_LIMIT, max(PREFILTER_FIRST, PREFILTER_PER_REQUEST * requests_of_shape))


def pass_snapshot(
    session: Session,
    settings: Settings,
    requests: Sequence[ScheduleRequest],
    fleet: FleetPrefilter,
    limit: int | None = None,
) -> tuple[Snapshot, bool]:
    """The snapshot one pass schedules `requests` on, and whether it is a part of the fleet.

    The resource prefilter is the worker's in-memory index of the fleet (kumo.compute.
    fleet_index, kept in sync by the caller): for each distinct resource request of the pass,
    up to `limit` (by default prefilter_limit of the requests of that shape) hosts that hold
    room for it, walked from a random start so that concurrent workers weigh different hosts of
    a large fleet. Only those hosts are read from the database, and the policy filters and
    weighers run on that exact read (which is written back to the index). A request the part
    cannot place is rescheduled on the whole fleet (see _place), so a prefilter never turns
    into a wrong "no valid host". Requests whose constraints name hosts (server groups,
    same_host, a forced host) or ask for no resources read the whole fleet."""
    hinted = set().union(*(r.hinted_instances for r in requests))
    stock_exclusive = settings.stock_private_exclusive
    whole = any(
        r.group is not None
        or r.same_host
        or r.force_host is not None
        or r.requested_host is not None
        or not r.resources
        for r in requests
    )
    if whole:
        return _whole_fleet(session, settings, hinted, fleet), False
    provider_ids: set[int] = set()
    shapes = Counter(tuple(sorted(r.resources.items())) for r in requests)
    for shape, count in sorted(shapes.items()):
        provider_ids.update(fleet.sample(dict(shape), limit or prefilter_limit(count)))
    snapshot = load_snapshot(
        session,
        settings.heartbeat_timeout_seconds,
        instance_uuids=hinted,
        stock_exclusive=stock_exclusive,
        provider_ids=provider_ids,
        group_uuids=(),
    )
    fleet.observe(snapshot, provider_ids)
    return snapshot, True


def _whole_fleet(session: Session, settings: Settings, hinted: set[str], fleet: FleetPrefilter) -> Snapshot:
    snapshot = load_snapshot(
        session,
        settings.heartbeat_timeout_seconds,
        instance_uuids=hinted,
        stock_exclusive=settings.stock_private_exclusive,
    )
    fleet.observe(snapshot)
    return snapshot


class _PassReads:
    """The reads of one pass after its first, in the caller's transaction: a wider one when
    the part cannot place a request (PREFILTER_SAMPLE candidates, PREFILTER_LIMIT, then the
    whole fleet; the rest of the pass uses it), and a fresh read after a claim conflict
    (another worker claimed meanwhile: the pass's snapshot is stale for the hosts it would
    pick next)."""

    def __init__(
        self, settings: Settings, requests: Sequence[ScheduleRequest], partial: bool, fleet: FleetPrefilter
    ) -> None:
        self.settings = settings
        self.requests = requests
        self.hinted = set().union(*(r.hinted_instances for r in requests))
        self.partial = partial
        self.fleet = fleet
        self.limit: int | None = None  # the pass's own page size (prefilter_limit)

    def fresh(self, session: Session) -> Snapshot:
        if not self.partial:
            return self.whole_fleet(session)
        self.fleet.sync(session)
        snapshot, self.partial = pass_snapshot(session, self.settings, self.requests, self.fleet, self.limit)
        return snapshot

    def wider(self, session: Session) -> Snapshot:
        read = self.limit or prefilter_limit(len(self.requests))
        for limit in (PREFILTER_SAMPLE, PREFILTER_LIMIT):
            if limit > read:
                self.limit = limit
                return self.fresh(session)
        return self.whole_fleet(session)

    def whole_fleet(self, session: Session) -> Snapshot:
        self.partial = False
        return _whole_fleet(session, self.settings, self.hinted, self.fleet)


def _lock_pending(session: Session, instance_uuid: str, skip_locked: bool) -> Instance | None:
    stmt = select(Instance).where(
        Instance.uuid == instance_uuid,
        Instance.vm_state == VmState.BUILDING,
        Instance.task_state == TaskState.SCHEDULING,
        Instance.deleted.is_(False),
    )
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalar(stmt)


def _place(
    session: Session,
    instance: Instance,
    request: ScheduleRequest,
    snapshot: Snapshot,
    config: SchedulerConfig,
    woken: set[str],
    events: _PassEvents,
    reads: _PassReads | None = None,
) -> Snapshot:
    """Place one instance on `snapshot`; returns the snapshot for the next instance of the pass
    (after this claim; re-read through `reads` when the part of the fleet could not place it
    or the claim conflicted)."""
    if request.group is not None:
        # Claim-time check: serialize claims into this group and see its committed members.
        snapshot = server_groups.lock_for_claim(session, snapshot, request.group.uuid)
    started = time.perf_counter()
    decision = schedule(request, snapshot, config)
    SCHEDULE_SECONDS.observe(time.perf_counter() - started)
    while not decision.ok and reads is not None and reads.partial:
        snapshot = reads.wider(session)  # at most three times: 64, 1,000, every host
        decision = schedule(request, snapshot, config)
    if not decision.ok:
        event = events.of(session, instance.uuid)
        with logged_as(event.request_id if event is not None else "-"):
            return _no_valid_host(session, instance, decision, event, snapshot)
    candidates = server_groups.claim_candidates(decision.candidates, request, snapshot)[:CLAIM_TRIES]
    if _plannable(request, candidates):
        placed = _commit_first(session, instance, request, candidates, snapshot)
        if placed is None:
            return _conflict(session, instance, snapshot, reads)
        chosen, request_id = placed
        with logged_as(request_id):
            log.info("scheduled %s on %s", instance.uuid, chosen.host)
        woken.add(chosen.host)
        return snapshot.after_claim(chosen.host, request)
    event = events.of(session, instance.uuid)
    with logged_as(event.request_id if event is not None else "-"):
        try:
            chosen = claims.claim_first(session, candidates, instance.uuid, request.resources)
        except ClaimConflict:
            return _conflict(session, instance, snapshot, reads)
        zone = snapshot.hosts[chosen.host].availability_zone
        details = note = None
        if chosen.soft_policy_honoured is False and request.group is not None:
            details = server_groups.spread_not_honoured_message(request.group)
            note = (server_groups.SPREAD_NOT_HONOURED_EVENT, details)
        change = lc.placed(state_of(instance), chosen.host, zone, event, details, note)
        apply(session, instance, change, Requester(request_id_var.get()))
        woken.add(chosen.host)
        log.info("scheduled %s on %s", instance.uuid, chosen.host)
        return snapshot.after_claim(chosen.host, request)


# A claim tries the best few candidates in turn; when all of them moved the instance waits for
# the next pass (as claims.claim_first).
CLAIM_TRIES = 3


def _conflict(session: Session, instance: Instance, snapshot: Snapshot, reads: _PassReads | None) -> Snapshot:
    """Another worker changed those hosts: leave the instance pending for the next pass (no
    retry storm), and go on with a fresh read, not the stale snapshot."""
    log.info("claim conflict for %s; rescheduling next pass", instance.uuid)
    return snapshot if reads is None else reads.fresh(session)


# The agent's part of the create action: its event, and the task that carries it out.
SPAWN_EVENT = lc.SPAWN_EVENT
SPAWN_TASK = TaskKind.SPAWN


def _placed_task_state(instance: Instance, host: str, availability_zone: str | None) -> str:
    """The task_state lifecycle.placed gives `instance` on `host`: a plan writes the same."""
    task_state = lc.placed(state_of(instance), host, availability_zone, None).task_state
    if not isinstance(task_state, str):
        raise ValueError(f"lifecycle.placed left no task_state for {instance.uuid}")
    return task_state


def _spawn_payload(instance: Instance) -> dict[str, Any]:
    """The spawn task's payload, but for the "event_id" of the spawn event started with it."""
    payload = SpawnPayload(None, lifecycle_apply.spec(instance)).to_json()
    payload.pop("event_id", None)
    return payload


def _plannable(request: ScheduleRequest, candidates: Sequence[Candidate]) -> bool:
    """Whether this placement is a plan the store commits (Store.commit_placement): for
    hypervisors (a baremetal node's state moves with its task, kumo.baremetal.service.
    on_task_enqueued) and placements that record no more than the scheduling and spawn events
    (a soft group's unhonoured spread adds one). The others go through the ORM path of _place.
    A plan's spawn task skips the work queue's on-enqueued hooks (kumo.work.queue): every
    placement a registered hook cares about must stay off the plan path here."""
    return not any(
        may_be_node(c.host) or (request.group is not None and c.soft_policy_honoured is False)
        for c in candidates
    )


def placement_plan(
    instance: Instance, request: ScheduleRequest, candidate: Candidate, availability_zone: str | None
) -> PlacementPlan:
    """The writes that place `instance` on `candidate` (see PlacementPlan): the same rows the
    ORM path of _place writes."""
    task_state = _placed_task_state(instance, candidate.host, availability_zone)
    return PlacementPlan(
        provider_id=candidate.provider_id,
        generation=candidate.generation,
        allocations={rc: amount for rc, amount in request.resources.items() if amount > 0},
        instance_id=instance.id,
        instance_uuid=instance.uuid,
        host=candidate.host,
        availability_zone=availability_zone,
        task_state=task_state,
        end_event=SCHEDULE_EVENT,
        start_event=SPAWN_EVENT,
        task_id=str(uuid.uuid4()),
        task_kind=SPAWN_TASK,
        task_payload=_spawn_payload(instance),
    )


def commit_plan(session: Session, instance: Instance, plan: PlacementPlan) -> str | None:
    """Commit `plan` through the session's store; the request id of the instance's create
    action ("-" without an open scheduling event), or None (nothing written) when the provider's
    generation moved. The session's copy of the instance is updated as committed, so no ORM
    flush writes it again."""
    started = time.perf_counter()
    request_id = store_of(session).commit_placement(session, plan)
    if request_id is None:
        CLAIM_CONFLICTS.inc()
        return None
    committed = {
        "host": plan.host,
        "availability_zone": plan.availability_zone,
        "task_state": plan.task_state,
        "updated_at": utcnow(),
    }
    for name, value in committed.items():
        set_committed_value(instance, name, value)
    CLAIM_SECONDS.observe(time.perf_counter() - started)
    return request_id


def _commit_first(
    session: Session,
    instance: Instance,
    request: ScheduleRequest,
    candidates: Sequence[Candidate],
    snapshot: Snapshot,
) -> tuple[Candidate, str] | None:
    """A plan per candidate, committed in turn until one's compare-and-swap holds: the chosen
    candidate and the request id of the instance's create action, or None when every one of
    them moved."""
    for candidate in candidates:
        # lifecycle.placed's BindPorts (a first placement: no firewall sync, as the ORM path's
        # lifecycle_apply does), done here: the plan's spawn spec carries the bound ports.
        zone = snapshot.hosts[candidate.host].availability_zone
        server_networking.bind_server_ports(
            session, instance.uuid, candidate.host, availability_zone=zone, sync_firewalls=False
        )
        plan = placement_plan(instance, request, candidate, zone)
        request_id = commit_plan(session, instance, plan)
        if request_id is not None:
            return candidate, request_id
    return None


def _no_valid_host(
    session: Session,
    instance: Instance,
    decision: Decision,
    event: OpenEvent | None,
    snapshot: Snapshot,
) -> Snapshot:
    SCHEDULE_FAILURES.inc()
    log.warning("no valid host for %s: %s", instance.uuid, decision.message)
    apply(session, instance, lc.no_valid_host(state_of(instance), decision.message, event), Requester(None))
    return snapshot


def claim_destination(
    session: Session,
    instance: Instance,
    dest_host: str | None,
    move: str = "cold/live migration",
    allow_source: bool = False,
) -> str:
    """For a move (`move` names it in errors): pick (or check) a destination with the same core
    and claim it for the instance (its flavor as the row has it now), handing the source's
    allocations to the migration consumer meanwhile. `allow_source`: the source may be chosen
    (a resize on its own host; both claims then count there until confirmed or reverted)."""
    if instance.host is None:
        raise Conflict(f"Instance {instance.uuid} has no host to move from")
    group = (
        session.scalar(select(ServerGroup).where(ServerGroup.uuid == instance.server_group))
        if instance.server_group
        else None
    )
    base = request_for(instance, group)
    request = ScheduleRequest(
        instance_uuid=base.instance_uuid,
        project_id=base.project_id,
        resources=base.resources,
        flavor_extra_specs=base.flavor_extra_specs,
        availability_zone=None,
        group=base.group,
        ignore_hosts=() if allow_source else (instance.host,),
        force_host=dest_host,
    )
    settings = get_settings()
    snapshot = load_snapshot(
        session, settings.heartbeat_timeout_seconds, stock_exclusive=settings.stock_private_exclusive
    )
    if base.group is not None:
        snapshot = server_groups.lock_for_claim(session, snapshot, base.group.uuid)
    # The instance's own membership must not count against its destination.
    decision = schedule(
        request,
        _without_instance(snapshot, instance),
        scheduler_config(settings),
        filters=server_groups.move_filters(base.group, forced=dest_host is not None),
    )
    if not decision.ok:
        if dest_host is not None and dest_host not in snapshot.hosts:
            raise NotFound(f"Compute host {dest_host} could not be found.")
        raise BadRequest(f"No valid host found for {move}. {decision.message}")
    try:
        claims.rename_consumer(session, instance.uuid, migration_consumer(instance.uuid))
    except claims.ConsumerHeld:
        raise Conflict(
            f"Instance {instance.uuid} still holds the source's allocations of an earlier move; "
            "reset its state to active or delete it."
        ) from None
    try:
        chosen = claims.claim_first(session, decision.candidates, instance.uuid, request.resources)
    except ClaimConflict:
        raise Conflict("The destination changed while claiming it; retry the migration.") from None
    return chosen.host


def _without_instance(snapshot: Snapshot, instance: Instance) -> Snapshot:
    if instance.server_group is None or instance.host is None:
        return snapshot
    group_hosts = {k: dict(v) for k, v in snapshot.group_hosts.items()}
    members = group_hosts.get(instance.server_group, {})
    if members.get(instance.host):
        members[instance.host] -= 1
    return replace(snapshot, group_hosts=group_hosts)
