"""Precache jobs (kumo extension `os-kumo-image-precache`, and behind Nova's 2.81
`POST /os-aggregates/{id}/images`): the job's rows, its advance, its status, its cancel.

A job is one row per (host, image). Every change of a job (created, a host's report settled, a
host found down by the sweep) runs `advance` in the same transaction: the job's row is locked,
the pure planner (kumo/compute/precache/planner.py) decides from the rows and the hosts' liveness which
copies start now and from where, and those become `precache` tasks for the hosts' agents, woken
after commit. A host's agent reports its copy as its task's result; the work hook `HOOKS`
records it on the row and advances the job. Peer tickets are minted per transfer, only for a
transfer the job planned (`ticket_for`)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import aggregates, params
from kumo.compute.hosts import is_up
from kumo.compute.models import ComputeHost
from kumo.compute.precache import planner, tickets
from kumo.compute.precache.models import HostImageCache, ImagePeer, PrecacheHost, PrecacheJob
from kumo.config import Settings, get_settings
from kumo.db import utcnow
from kumo.db.base import after_commit, wake_after_commit
from kumo.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.image.service import get_image
from kumo.metrics import PRECACHE_BYTES
from kumo.store.protocol import store_of
from kumo.work import queue
from kumo.work.kinds import PrecachePayload, TaskKind
from kumo.work.models import Task

TARGETS = ("aggregate_id", "hosts", "availability_zone")


@dataclass(frozen=True)
class JobRequest:
    image_ids: tuple[str, ...]
    aggregate_id: int | None = None
    hosts: tuple[str, ...] | None = None
    availability_zone: str | None = None


def location_headers(job_id: str) -> dict[str, str]:
    """Where a job's status is (added to Nova's 2.81 response, which has no body)."""
    return {"Location": f"/compute/v2.1/os-kumo-image-precache/{job_id}", "X-Kumo-Precache-Job": job_id}


def policy(settings: Settings | None = None) -> planner.Policy:
    s = settings or get_settings()
    return planner.Policy(
        origin_concurrency=s.precache_origin_concurrency,
        peers_per_holder=s.precache_peers_per_holder,
        max_attempts=s.precache_max_attempts,
        cross_rack_peers=s.precache_cross_rack_peers,
        rack_origin_attempts=s.precache_max_attempts,
    )


# -- requests ------------------------------------------------------------------------------------
def parse(body: Any) -> JobRequest:
    """{"image_ids": [uuid, ...], and exactly one of "aggregate_id" | "hosts" | "availability_zone"}."""
    if not isinstance(body, dict) or "image_ids" not in body:
        raise BadRequest("Invalid input for field/attribute image_ids. 'image_ids' is a required property")
    params.reject_unknown(body, {"image_ids", *TARGETS}, "os-kumo-image-precache")
    image_ids = body["image_ids"]
    if not isinstance(image_ids, list) or not image_ids:
        raise BadRequest(f"Invalid input for field/attribute image_ids. Value: {image_ids!r}. is too short")
    for image_id in image_ids:
        if not isinstance(image_id, str) or not params.is_uuid_like(image_id):
            raise BadRequest(
                f"Invalid input for field/attribute image_ids. Value: {image_id!r}. is not a 'uuid'"
            )
    if len(set(image_ids)) != len(image_ids):
        raise BadRequest("Duplicate images in request")
    given = [key for key in TARGETS if key in body]
    if len(given) != 1:
        raise BadRequest("Exactly one of aggregate_id, hosts or availability_zone is required.")
    key, value = given[0], body[given[0]]
    if key == "aggregate_id":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise BadRequest(f"Invalid input for field/attribute aggregate_id. Value: {value!r}.")
        return JobRequest(tuple(image_ids), aggregate_id=params.integer_id(str(value), "aggregate_id"))
    if key == "hosts":
        if not isinstance(value, list) or not value or not all(isinstance(h, str) and h for h in value):
            raise BadRequest(f"Invalid input for field/attribute hosts. Value: {value!r}.")
        if len(set(value)) != len(value):
            raise BadRequest("Duplicate hosts in request")
        return JobRequest(tuple(image_ids), hosts=tuple(value))
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Invalid input for field/attribute availability_zone. Value: {value!r}.")
    return JobRequest(tuple(image_ids), availability_zone=value)


def _resolve_hosts(session: Session, ctx: RequestContext, req: JobRequest) -> list[str]:
    if req.aggregate_id is not None:
        return list(aggregates.get_aggregate(session, ctx, str(req.aggregate_id)).hosts)
    known = set(session.scalars(select(ComputeHost.name)))
    if req.hosts is not None:
        for host in req.hosts:
            if host not in known:
                raise NotFound(f"Compute host {host} could not be found.")
        return list(req.hosts)
    zones = aggregates.host_zones(session)
    found = sorted(h for h in known if zones.get(h, aggregates.DEFAULT_ZONE) == req.availability_zone)
    if not found:
        raise NotFound(f"Availability zone {req.availability_zone} could not be found.")
    return found


def create(session: Session, ctx: RequestContext, req: JobRequest) -> str:
    """Admin only. Images must exist (400, as Nova's 2.81); targets must exist (404). Returns
    the job id; the first copies are assigned in this transaction."""
    ctx.require_admin()
    hosts = _resolve_hosts(session, ctx, req)
    require_images(session, ctx, req.image_ids)
    return start(session, ctx.request_id, hosts, req.image_ids, req.aggregate_id, req.availability_zone)


def require_images(session: Session, ctx: RequestContext, image_ids: Sequence[str]) -> None:
    """Every image must exist: 400 otherwise, as Nova answers an image its Glance does not know."""
    for image_id in image_ids:
        try:
            get_image(session, ctx, image_id)
        except NotFound:
            raise BadRequest(f"Image {image_id} could not be found.") from None


def start(
    session: Session,
    request_id: str | None,
    hosts: Sequence[str],
    image_ids: Sequence[str],
    aggregate_id: int | None = None,
    availability_zone: str | None = None,
) -> str:
    """A job over `hosts` × `image_ids`, already validated; assigns its first copies."""
    job = PrecacheJob(
        id=str(uuid.uuid4()),
        image_ids=list(image_ids),
        aggregate_id=aggregate_id,
        availability_zone=availability_zone,
        request_id=request_id,
        state="running",
        start_time=utcnow(),
    )
    session.add(job)
    racks = {
        name: rack
        for name, rack in session.execute(
            select(ComputeHost.name, ComputeHost.rack).where(ComputeHost.name.in_(hosts))
        )
    }
    held = holding(session, hosts)
    now = utcnow()
    settings = get_settings()
    for image_id in image_ids:
        for host in hosts:
            row = PrecacheHost(job_id=job.id, host=host, rack=racks.get(host), image_id=image_id)
            if image_id in held.get(host, ()):  # already there: a holder from the start
                row.state, row.started_at, row.finished_at = planner.EXISTING, now, now
                # a task with no source: its agent pins the copy (or says it is gone: requeued)
                pin = PrecachePayload(job.id, image_id, [], 0, settings.precache_pin_seconds)
                row.task_id = queue.enqueue(session, host, TaskKind.PRECACHE, None, pin, request_id).id
                wake_after_commit(session, queue.host_key(host))
            session.add(row)
    session.flush()
    advance(session, job.id)
    return job.id


def holding(session: Session, hosts: Sequence[str]) -> dict[str, frozenset[str]]:
    """The images each of `hosts` holds as a verified copy, as its agent reported lately (a
    host that is down, or whose report is older than `precache_cache_report_max_age_seconds`,
    holds nothing here). A report gone stale since is harmless: a holder that cannot serve is
    refused by its peers (a missing copy demotes it), and they copy from elsewhere."""
    settings = get_settings()
    now = utcnow()
    horizon = now - dt.timedelta(seconds=settings.precache_cache_report_max_age_seconds)
    up, _ = _liveness(session, set(hosts))
    reports = session.scalars(
        select(HostImageCache).where(
            HostImageCache.host.in_(list(hosts)), HostImageCache.reported_at >= horizon
        )
    )
    return {r.host: frozenset(r.image_ids or []) for r in reports if up.get(r.host, False)}


def report_cache(session: Session, host: str, image_ids: Sequence[str]) -> None:
    """A host's agent reports the images it holds verified copies of (periodically, and after
    a copy): stored per host, read when a job is created. 404 when `host` is no compute host
    of the cloud (nothing is stored for a name no job can list)."""
    if session.scalar(select(ComputeHost.id).where(ComputeHost.name == host)) is None:
        raise NotFound(f"Compute host {host} could not be found.")
    # one statement (INSERT … ON CONFLICT DO UPDATE): two first reports of a host at once (its
    # registration's and its loop's) both succeed, the later one's ids kept
    statement: Any = (
        store_of(session)
        .insert(HostImageCache)
        .values(host=host, image_ids=sorted(set(image_ids)), reported_at=utcnow())
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["host"],
            set_={"image_ids": statement.excluded.image_ids, "reported_at": statement.excluded.reported_at},
        )
    )


# -- the job's advance ---------------------------------------------------------------------------
def _liveness(session: Session, names: set[str]) -> tuple[dict[str, bool], dict[str, int]]:
    now = utcnow()
    timeout = get_settings().heartbeat_timeout_seconds
    up: dict[str, bool] = {}
    disk: dict[str, int] = {}
    for host in session.scalars(select(ComputeHost).where(ComputeHost.name.in_(names))):
        up[host.name] = is_up(host, now, timeout)  # as Nova: a down host is skipped, a disabled one is not
        disk[host.name] = host.disk_gb
    return up, disk


def advance(session: Session, job_id: str) -> None:
    """Lock the job, apply the planner's decision to its rows and hand the copies out."""
    job = session.get(PrecacheJob, job_id, with_for_update=True)
    if job is None or job.state not in ("running", "cancelling"):
        return
    rows = list(session.scalars(select(PrecacheHost).where(PrecacheHost.job_id == job_id)))
    up, disk = _liveness(session, {r.host for r in rows})
    tasks = _tasks(session, [r.task_id for r in rows if r.state == planner.DOWNLOADING and r.task_id])
    now = utcnow()
    for row in rows:  # a copy whose task ended without its result recorded: a failed attempt
        task = tasks.get(row.task_id or "")
        if row.state == planner.DOWNLOADING and (task is None or task.state != "pending"):
            why = (task.error if task is not None else None) or "its task ended without a result"
            _failed_attempt(job, row, f"precache: {why}", now)  # no result: no sender to blame
    if job.state == "cancelling":  # nothing new starts; dead hosts are skipped; the copies in flight end it
        for row in rows:
            if row.state in planner.ACTIVE and not up.get(row.host, False):
                _skip(session, row, planner.HOST_DOWN, now)
        _close_if_finished(job, [r.state for r in rows])
        return
    urls = {host: url for host, url in session.execute(select(ImagePeer.host, ImagePeer.url))}
    targets = [
        planner.Target(
            r.host,
            r.image_id,
            r.rack,
            r.state,
            r.source,
            r.attempts,
            up.get(r.host, False),
            disk.get(r.host, 0),
            r.origin_attempts,
            r.host in urls,
            _planned(tasks.get(r.task_id or "")) if r.state == planner.DOWNLOADING else (),
            tuple(r.failed_peers or ()),
        )
        for r in rows
    ]
    decision = planner.plan(targets, policy())
    by_key = {(r.host, r.image_id): r for r in rows}
    for skip in decision.skips:
        _skip(session, by_key[(skip.host, skip.image_id)], skip.reason, now)
    for error in decision.errors:
        row = by_key[(error.host, error.image_id)]
        row.state, row.error, row.finished_at = planner.ERROR, error.reason, now
    settings = get_settings()
    for assignment in decision.assignments:
        row = by_key[(assignment.host, assignment.image_id)]
        # the planner lists only holders with a registered endpoint (Target.serves)
        sources = [
            {"source": s} if s == planner.ORIGIN else {"source": s, "url": urls[planner.peer_host(s) or ""]}
            for s in assignment.sources
        ]
        payload = PrecachePayload(
            job_id,
            assignment.image_id,
            sources,
            settings.precache_transfer_rate,
            settings.precache_pin_seconds,
            row.attempts + 1,
        )
        task = queue.enqueue(session, assignment.host, TaskKind.PRECACHE, None, payload, job.request_id)
        row.state, row.source, row.task_id = planner.DOWNLOADING, assignment.source, task.id
        row.attempts += 1
        row.origin_attempts += planner.ORIGIN in assignment.sources
        row.started_at, row.finished_at, row.error = now, None, None
        wake_after_commit(session, queue.host_key(assignment.host))
    _close_if_finished(job, [r.state for r in rows])


def _tasks(session: Session, ids: Sequence[str]) -> dict[str, Task]:
    return {t.id: t for t in session.scalars(select(Task).where(Task.id.in_(ids)))} if ids else {}


def _planned(task: Task | None) -> tuple[str, ...]:
    sources = (task.payload or {}).get("sources") if task is not None else None
    return tuple(str(s.get("source")) for s in sources or [] if isinstance(s, dict))


def _blamed(result: dict[str, Any], task: Task | None) -> tuple[str, ...]:
    """The sources a failed copy blames: those the agent says failed as senders (a receiver's own
    disk error blames none); every planned one from an agent that does not say."""
    planned = _planned(task)
    said = result.get("failed_sources")
    if isinstance(said, list):  # only what its task planned: an agent blames no other holder
        named = {str(s) for s in said}
        return tuple(s for s in planned if s in named)
    return planned


def _skip(session: Session, row: PrecacheHost, reason: str, now: dt.datetime) -> None:
    if row.task_id:
        queue.fail_pending(session, row.task_id, f"precache: {reason}")
    row.state, row.error, row.finished_at = planner.SKIPPED, reason, now


def _failed_attempt(
    job: PrecacheJob, row: PrecacheHost, error: str, now: dt.datetime, planned: Sequence[str] = ()
) -> None:
    """The copy failed: queued again (or an error after max attempts); the holders it blames
    (`planned`: the sources that failed as senders) are remembered (the planner avoids them for
    this row, or falls back to the origin)."""
    failed = [h for s in planned if (h := planner.peer_host(s))]
    if failed:
        row.failed_peers = sorted({*(row.failed_peers or []), *failed})
    row.error, row.finished_at = error, now
    row.state = planner.after_failure(row.attempts, policy())
    if row.state == planner.QUEUED and job.state == "cancelling":
        row.state = planner.SKIPPED


def _close_if_finished(job: PrecacheJob, states: list[str], cancelled: bool = False) -> None:
    state = planner.job_state(states, cancelled or job.state == "cancelling")
    if state != "running":
        job.state, job.end_time = state, utcnow()


def record(session: Session, task: Task, result: dict[str, Any]) -> None:
    """A host's report of its copy (its precache task's result), then the job's advance. The
    bytes it moved are recorded even when the row went on without it (skipped, cancelled, its
    task failed and another one planned): the origin's and the peers' traffic is what it was."""
    job_id = str(task.payload.get("job_id"))
    job = session.get(PrecacheJob, job_id, with_for_update=True)
    row = session.scalar(
        select(PrecacheHost).where(
            PrecacheHost.job_id == job_id,
            PrecacheHost.host == task.host,
            PrecacheHost.image_id == str(task.payload.get("image_id")),
        )
    )
    if job is None or row is None:
        return
    from_origin, from_peers = (
        int(result.get("bytes_from_origin") or 0),
        int(result.get("bytes_from_peers") or 0),
    )
    row.bytes_from_origin += from_origin
    row.bytes_from_peers += from_peers
    after_commit(session, lambda: _count_bytes(from_origin, from_peers))
    if row.task_id == task.id and row.state == planner.EXISTING and not row.attempts:
        _confirmed(session, job, row, result)  # the pin of a copy marked from the host's report
        return
    if row.task_id != task.id or row.state != planner.DOWNLOADING:
        return
    now = utcnow()
    state = str(result.get("state") or planner.ERROR)
    row.bytes = int(result.get("bytes") or 0)
    refused = [r for r in result.get("refused") or [] if isinstance(r, dict)]
    row.refused = [*(row.refused or []), *refused]
    row.finished_at = now
    if state in (planner.CACHED, planner.EXISTING):
        row.state, row.source, row.error = state, str(result.get("source") or row.source), None
    elif state == planner.UNSUPPORTED:
        row.state, row.error = state, str(result.get("error") or "unsupported")
    elif result.get("suspect"):  # its own copy is bad but in use: it can neither serve nor replace it
        row.state, row.error = planner.ERROR, str(result.get("error") or "its copy failed verification")
    elif result.get("origin_failed"):  # the image itself is unusable: every host fails at once
        why = str(result.get("error") or "the origin's image is unusable")
        for other in session.scalars(
            select(PrecacheHost).where(PrecacheHost.job_id == job_id, PrecacheHost.image_id == row.image_id)
        ):
            if other.state in planner.ACTIVE:
                if other.task_id and other is not row:
                    queue.fail_pending(session, other.task_id, f"precache: {why}")
                other.state, other.error, other.finished_at = planner.ERROR, why, now
    else:
        _failed_attempt(job, row, str(result.get("error") or "copy failed"), now, _blamed(result, task))
    for refusal in refused:  # a holder whose copy failed re-verification: dropped, or kept (in use);
        # or that did not hold it at all (`missing`: it was marked from a stale cache report)
        if refusal.get("dropped") or refusal.get("suspect"):
            again = bool(refusal.get("dropped"))  # dropped: its host copies the image again
            dropped_why = (
                "it did not hold the image its cache report listed"
                if refusal.get("missing")
                else "its copy failed verification and was dropped"
            )
            session.execute(
                update(PrecacheHost)
                .where(
                    PrecacheHost.job_id == job_id,
                    PrecacheHost.host == str(refusal.get("peer")),
                    PrecacheHost.image_id == row.image_id,
                    PrecacheHost.state.in_(sorted(planner.HOLDING)),
                )
                .values(
                    state=planner.QUEUED if again else planner.ERROR,
                    error=dropped_why
                    if again
                    else "its copy failed verification; kept for the instances using it, served to no peer",
                )
                .execution_options(synchronize_session="fetch")
            )
    session.flush()
    advance(session, job_id)


def _confirmed(session: Session, job: PrecacheJob, row: PrecacheHost, result: dict[str, Any]) -> None:
    """A host marked `existing` from its cache report pinned its copy. If the copy was gone or
    is unusable (the report was stale), the host copies the image after all: its row is queued
    again, and a job that had finished runs again for it (a cancelled one records the error)."""
    if str(result.get("state")) in planner.HOLDING:
        return
    why = f"it did not hold the image its cache report listed: {result.get('error') or 'gone'}"
    row.error, row.finished_at = why, utcnow()
    if job.state in ("cancelling", "cancelled"):
        row.state = planner.ERROR
        return
    row.state, row.finished_at = planner.QUEUED, None
    job.state, job.end_time = "running", None
    session.flush()
    advance(session, job.id)


def _count_bytes(from_origin: int, from_peers: int) -> None:
    PRECACHE_BYTES.labels("origin").inc(from_origin)
    PRECACHE_BYTES.labels("peer").inc(from_peers)


def record_progress(
    session: Session,
    job_id: str,
    host: str,
    image_id: str,
    source: str,
    done: int,
    attempt: int | None = None,
) -> None:
    """A copy in flight reports its bytes so far (and which of its sources it reads now); 409
    when the row is no longer downloading (skipped, cancelled, failed over), or is downloading
    in another attempt than the report's (a late report of an earlier attempt): the agent
    aborts that copy. One statement on the row alone (no other lock is taken)."""
    match = [
        PrecacheHost.job_id == job_id,
        PrecacheHost.host == host,
        PrecacheHost.image_id == image_id,
        PrecacheHost.state == planner.DOWNLOADING,
    ]
    if attempt is not None:  # agents before `attempt` report without it
        match.append(PrecacheHost.attempts == attempt)
    changed = session.execute(
        update(PrecacheHost)
        .where(*match)
        .values(bytes=done, source=source)
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], changed).rowcount == 0:
        raise Conflict(
            f"Image {image_id} is no longer being copied to {host} by job {job_id} in this attempt."
        )


class PrecacheHooks:
    """The work hook: a precache task's result advances its job."""

    def on_enqueued(self, session: Session, task: Task) -> None:
        return None

    def late(self, session: Session, task: Task, result: dict[str, Any]) -> None:
        if task.kind == str(TaskKind.PRECACHE):  # its row went on without it: its bytes still count
            record(session, task, result)

    def settle(self, session: Session, task: Task, ok: bool, result: dict[str, Any]) -> None:
        if task.kind != str(TaskKind.PRECACHE):
            return
        record(session, task, result if ok else {**result, "state": planner.ERROR})


HOOKS = PrecacheHooks()


def lock_jobs_of(session: Session, task_ids: Sequence[str]) -> None:
    """The work hook's locker: before results are settled, lock the rows of their tasks'
    precache jobs (by id), so that every path locks a job's row before its tasks' (a report
    settles its task, then advances its job, which may fail its other tasks; the sweep and a
    cancel lock the job, then fail tasks): one order, no deadlock."""
    if not task_ids:
        return
    payloads = session.execute(
        select(Task.payload).where(Task.id.in_(list(task_ids)), Task.kind == str(TaskKind.PRECACHE))
    )
    for job_id in sorted({str((p or {}).get("job_id")) for (p,) in payloads}):
        session.get(PrecacheJob, job_id, with_for_update=True)


def running_jobs(session: Session) -> list[str]:
    """The jobs not yet finished (a read: the sweep writes only when there are some)."""
    return list(
        session.scalars(select(PrecacheJob.id).where(PrecacheJob.state.in_(("running", "cancelling"))))
    )


def sweep(session: Session, job_ids: Sequence[str]) -> None:
    """Advance these jobs (locked in id order, as everywhere): hosts that died are skipped,
    dead seeds replaced."""
    for job_id in sorted(job_ids):
        advance(session, job_id)


def cancel(session: Session, ctx: RequestContext, job_id: str) -> None:
    """Queued (host, image)s are skipped; copies in flight finish; the job ends `cancelled`."""
    ctx.require_admin()
    job = session.get(PrecacheJob, job_id, with_for_update=True)
    if job is None:
        raise NotFound(f"Precache job {job_id} could not be found.")
    if job.state not in ("running", "cancelling"):
        return
    rows = list(session.scalars(select(PrecacheHost).where(PrecacheHost.job_id == job_id)))
    now = utcnow()
    for row in rows:
        if row.state == planner.QUEUED:
            row.state, row.error, row.finished_at = planner.SKIPPED, "cancelled", now
    job.state = "cancelling"
    _close_if_finished(job, [r.state for r in rows], cancelled=True)


# -- tickets -------------------------------------------------------------------------------------
def ticket_key(agent_token: str, settings: Settings | None = None) -> bytes:
    s = settings or get_settings()
    return s.precache_ticket_key.encode() if s.precache_ticket_key else tickets.derive_key(agent_token)


def ticket_for(session: Session, key: bytes, image_id: str, sender: str, receiver: str) -> dict[str, Any]:
    """A ticket for `receiver` to fetch `image_id` from `sender`: only while a job has that
    copy in flight with `sender` among its planned sources (403 otherwise)."""
    rows = session.scalars(
        select(PrecacheHost).where(
            PrecacheHost.host == receiver,
            PrecacheHost.image_id == image_id,
            PrecacheHost.state == planner.DOWNLOADING,
        )
    )
    for row in rows:
        task = session.get(Task, row.task_id) if row.task_id else None
        sources = (task.payload or {}).get("sources") if task is not None else None
        if any(isinstance(s, dict) and s.get("source") == planner.peer(sender) for s in sources or []):
            expiry = int(time.time()) + get_settings().precache_ticket_ttl_seconds
            return {"ticket": tickets.mint(key, image_id, sender, receiver, expiry), "expires": expiry}
    raise Forbidden(f"No precache transfer of image {image_id} from {sender} to {receiver} is planned.")


def register_peer(session: Session, host: str, url: str) -> None:
    peer = session.get(ImagePeer, host)
    if peer is None:
        session.add(ImagePeer(host=host, url=url))
    else:
        peer.url = url


# -- status --------------------------------------------------------------------------------------
def _iso(value: dt.datetime | None) -> str | None:
    return value.replace(microsecond=0).isoformat() if value is not None else None


def _host_view(row: PrecacheHost) -> dict[str, Any]:
    return {
        "host": row.host,
        "rack": row.rack,
        "image_id": row.image_id,
        "state": row.state,
        "source": row.source if row.state not in (planner.QUEUED, planner.SKIPPED) else None,
        "bytes": row.bytes,
        "bytes_from_origin": row.bytes_from_origin,
        "bytes_from_peers": row.bytes_from_peers,
        "attempts": row.attempts,
        "origin_attempts": row.origin_attempts,
        "refused": list(row.refused or []),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "error": row.error,
    }


def view(job: PrecacheJob, rows: Sequence[PrecacheHost]) -> dict[str, Any]:
    """Workday's status: "N of M hosts done. K errors." over hosts (a host is done when every
    image of the job is terminal there, in error when any of them is)."""
    per_host: dict[str, list[str]] = {}
    for r in rows:
        per_host.setdefault(r.host, []).append(r.state)
    done = [h for h, s in per_host.items() if all(x in planner.TERMINAL for x in s)]
    errors = sorted(h for h, s in per_host.items() if planner.ERROR in s)
    skipped = sorted(h for h, s in per_host.items() if planner.SKIPPED in s)
    downloading = [h for h, s in per_host.items() if planner.DOWNLOADING in s]
    queued = [h for h, s in per_host.items() if planner.QUEUED in s and planner.DOWNLOADING not in s]
    racks: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: (r.started_at or dt.datetime.max, r.host)):
        rack = racks.setdefault(r.rack or "", {"rack": r.rack, "seed": None, "done": 0, "total": 0})
        rack["total"] += 1
        rack["done"] += r.state in planner.TERMINAL
        if r.source == planner.ORIGIN and rack["seed"] is None and r.state != planner.QUEUED:
            rack["seed"] = r.host
    counts = Counter(r.state for r in rows)
    return {
        "job_id": job.id,
        "image_ids": list(job.image_ids),
        "aggregate_id": job.aggregate_id,
        "availability_zone": job.availability_zone,
        "start_time": _iso(job.start_time),
        "end_time": _iso(job.end_time),
        "state": "running" if job.state == "cancelling" else job.state,
        "overall_status": f"{len(done)} of {len(per_host)} hosts done. {len(errors)} errors.",
        "num_hosts": len(per_host),
        "num_hosts_done": len(done),
        "num_hosts_downloading": len(downloading),
        "num_hosts_queued": len(queued),
        "error_hosts": errors,
        "total_errors": counts[planner.ERROR],
        "skipped_hosts": skipped,
        "bytes_from_origin": sum(r.bytes_from_origin for r in rows),
        "bytes_from_peers": sum(r.bytes_from_peers for r in rows),
        "racks": [racks[k] for k in sorted(racks)],
        "hosts": [_host_view(r) for r in sorted(rows, key=lambda r: (r.host, r.image_id))],
    }


def show(session: Session, ctx: RequestContext, job_id: str) -> dict[str, Any]:
    ctx.require_admin()
    job = session.get(PrecacheJob, job_id)
    if job is None:
        raise NotFound(f"Precache job {job_id} could not be found.")
    rows = list(session.scalars(select(PrecacheHost).where(PrecacheHost.job_id == job_id)))
    return view(job, rows)


MAX_LIST = 100  # jobs per page at most (each job lists its hosts): `limit` above is this


def list_jobs(
    session: Session, ctx: RequestContext, image_id: str | None, page: params.Page | None = None
) -> list[dict[str, Any]]:
    """The jobs, newest first (with `image_id`, the jobs that precache that image), a page of
    at most `page.limit` (MAX_LIST without one) after the job `page.marker` (400 when unknown)."""
    ctx.require_admin()
    if image_id is not None and not params.is_uuid_like(image_id):
        raise BadRequest(f"Invalid input for field/attribute image_id. Value: {image_id!r}. is not a 'uuid'")
    stmt = select(PrecacheJob).order_by(PrecacheJob.start_time.desc(), PrecacheJob.id)
    if image_id is not None:
        ids = select(PrecacheHost.job_id).where(PrecacheHost.image_id == image_id).distinct()
        stmt = stmt.where(PrecacheJob.id.in_(ids))
    if page is not None and page.marker is not None:
        marker = session.get(PrecacheJob, page.marker)
        if marker is None:
            raise BadRequest(f"marker [{page.marker}] not found")
        stmt = stmt.where(
            (PrecacheJob.start_time < marker.start_time)
            | ((PrecacheJob.start_time == marker.start_time) & (PrecacheJob.id > marker.id))
        )
    limit = MAX_LIST if page is None or page.limit is None else min(page.limit, MAX_LIST)
    jobs = list(session.scalars(stmt.limit(limit)))
    rows: dict[str, list[PrecacheHost]] = {job.id: [] for job in jobs}
    if jobs:
        for row in session.scalars(select(PrecacheHost).where(PrecacheHost.job_id.in_(list(rows)))):
            rows[row.job_id].append(row)
    return [view(job, rows[job.id]) for job in jobs]
