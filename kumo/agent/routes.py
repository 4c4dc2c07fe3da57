"""Internal HTTP API for agents (/internal/v1). Authenticated by the shared agent token."""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
from collections.abc import Iterator
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from kumo.agent import service
from kumo.agent.protocol import (
    AGENT_TOKEN_HEADER,
    CpuSignal,
    FleetHeartbeat,
    FleetHeartbeatResult,
    FleetPoll,
    FleetTaskList,
    HostReport,
    ImageCacheReport,
    ImagePeerReport,
    Poll,
    PowerStates,
    PrecacheProgress,
    TaskList,
    TaskReports,
    TicketRequest,
)
from kumo.api.context import RequestContext
from kumo.api.deps import runtime
from kumo.compute import hosts
from kumo.compute.params import host_value
from kumo.compute.precache import service as precache
from kumo.errors import Unauthorized
from kumo.image import service as images
from kumo.image import views as image_views
from kumo.image.routes import image_store, upload_chunks
from kumo.image.store import ImageStore
from kumo.metadata import backend as metadata_backend
from kumo.metrics import IMAGE_BYTES_TO_AGENTS
from kumo.network import dhcp, firewall
from kumo.network import schemas as network_schemas
from kumo.network import sync as network_sync
from kumo.rebalance import signal as cpu_signal
from kumo.rebalance.core import Policy
from kumo.runtime import Runtime, Waker
from kumo.work.queue import host_key

router = APIRouter(prefix="/internal/v1")
MAX_WAIT_SECONDS = 30.0
# A fleet poll has no single wake-up key to wait on (the scheduler wakes one key per host): it
# re-reads the database this often instead. Costs that much latency before a spawn starts.
FLEET_POLL_STEP_SECONDS = 0.25
# A DHCP long poll is woken when an applied generation of its network commits (on PostgreSQL
# from any API worker, through LISTEN/NOTIFY); it re-reads this often besides (a lost wake-up).
DHCP_POLL_STEP_SECONDS = 1.0
log = logging.getLogger("kumo.api")
# Agents read any image a server on their host boots from.
AGENT_CONTEXT = RequestContext(user_id="kumo-agent", project_id=None, roles=("admin",))


async def agent(request: Request, rt: Runtime = Depends(runtime)) -> Runtime:
    presented = request.headers.get(AGENT_TOKEN_HEADER, "")
    if not hmac.compare_digest(presented.encode(), rt.agent_token.encode()):
        raise Unauthorized("Invalid agent token.")
    return rt


@router.post("/hosts", status_code=204)
def register(report: HostReport, rt: Runtime = Depends(agent)) -> Response:
    with rt.db.transaction() as session:
        service.register(session, report)
    return Response(status_code=204)


@router.put("/network-agents/{host}", status_code=204)
def register_network_agent(host: str, rt: Runtime = Depends(agent)) -> Response:
    """`host`'s agent was started with `--network-host`: it may serve networks' DHCP and metadata."""
    with rt.db.transaction() as session:
        network_sync.register_agent(session, host)
    return Response(status_code=204)


@router.put("/firewall-hosts/{host}", status_code=204)
def register_firewall_host(host: str, rt: Runtime = Depends(agent)) -> Response:
    """`host`'s agent enforces security groups on its guests' ports: it gets `firewall_sync` work."""
    with rt.db.transaction() as session:
        firewall.register_host(session, host)
    return Response(status_code=204)


@router.delete("/firewall-hosts/{host}", status_code=204)
def unregister_firewall_host(host: str, rt: Runtime = Depends(agent)) -> Response:
    """`host`'s agent runs real guests but cannot enforce security groups: no `firewall_sync`
    work for it (its pending syncs are cancelled). Idempotent: an unknown host is fine."""
    with rt.db.transaction() as session:
        firewall.unregister_host(session, host)
    return Response(status_code=204)


@router.get("/hosts/{host}/firewall")
def host_firewall(
    host: str, port_id: list[str] = Query(default=[]), rt: Runtime = Depends(agent)
) -> dict[str, Any]:
    """What the host's firewall must hold: its bound ports and those named (`port_id`: a guest
    it prepares before its ports are bound there), each with its rules resolved."""
    with rt.db.read() as session:
        return firewall.host_firewall(session, host, port_id)


@router.get("/networks/{network_id}/dhcp")
def network_dhcp(network_id: str, rt: Runtime = Depends(agent)) -> dict[str, Any]:
    """What the network's DHCP host must serve (its `network_sync` task reads it)."""
    with rt.db.read() as session:
        return dhcp.dhcp_state(session, network_id)


@router.get("/networks/{network_id}/dhcp-generation", openapi_extra=network_schemas.DHCP_SERVED_QUERY)
async def network_dhcp_served(
    network_id: str,
    generation: str | None = Query(None, alias="min"),
    wait: str | None = Query(None),
    rt: Runtime = Depends(agent),
) -> dict[str, Any]:
    """Long poll: whether the network's DHCP host applied generation `min` (or later), answered
    once it has, after `wait` seconds, or once the API is stopping (a hypervisor asks before
    starting a guest whose port came with that generation)."""
    wanted, seconds = dhcp.parse_served_query(generation, wait)
    deadline = anyio.current_time() + seconds
    key = network_sync.dhcp_key(network_id)
    while True:
        seen = rt.waker.seq(key)
        found = await anyio.to_thread.run_sync(_dhcp_served, rt, network_id, wanted)
        left = deadline - anyio.current_time()
        if found["served"] or left <= 0 or rt.waker.stopping.is_set():
            return found
        await _async_waits(rt.waker).wait(key, seen, min(left, DHCP_POLL_STEP_SECONDS))


def _dhcp_served(rt: Runtime, network_id: str, generation: int) -> dict[str, Any]:
    with rt.db.read() as session:
        return dhcp.dhcp_served(session, network_id, generation)


@router.put("/hosts/{host}/heartbeat", status_code=204)
def heartbeat(host: str, rt: Runtime = Depends(agent)) -> Response:
    with rt.db.transaction() as session:
        hosts.heartbeat(session, host)
    return Response(status_code=204)


@router.put("/heartbeats")
def fleet_heartbeat(body: FleetHeartbeat, rt: Runtime = Depends(agent)) -> FleetHeartbeatResult:
    """Batched heartbeats of many hosts from one agent process that serves them all (the
    simulated fleet of `kumo bench density`; any agent hosting several hosts): each named host
    is up as of now, as if it had sent its own heartbeat. Answers the names the API does not
    know (deleted hosts), whose agents must register again."""
    with rt.db.transaction() as session:
        unknown = service.heartbeat_many(session, body.hosts)
    return FleetHeartbeatResult(unknown=unknown)


@router.post("/hosts/{host}/tasks/poll")
async def work(host: str, poll: Poll, rt: Runtime = Depends(agent)) -> TaskList:
    """Long poll: answer at once when work other than `busy` is pending, else when woken or
    after `wait` seconds, or once the API is stopping (then with what it found)."""
    wait = min(poll.wait, MAX_WAIT_SECONDS)
    key = host_key(host)
    while True:
        seen = rt.waker.seq(key)
        found = await anyio.to_thread.run_sync(_pending, rt, host, poll.busy)
        if found.tasks or wait <= 0 or rt.waker.stopping.is_set():
            return found
        # re-read now and then (task_poll_recheck_seconds): wake-ups are a hint
        step = min(wait, rt.settings.task_poll_recheck_seconds)
        wait -= step
        await _async_waits(rt.waker).wait(key, seen, step)


class AsyncWaits:
    """Waits for a Waker key on the event loop: an idle agent's long poll holds an
    asyncio.Event, not one of the worker's threads (each wake of the key, from any thread,
    sets the events of its waiters)."""

    def __init__(self, waker: Waker) -> None:
        self._waker = waker
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        waker.listen(self._wake)
        waker.on_stop(self._wake_all)

    def _wake(self, key: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(key, ()))
        self._set(waiters)

    def _wake_all(self) -> None:
        with self._lock:
            waiters = [entry for entries in self._waiters.values() for entry in entries]
        self._set(waiters)

    @staticmethod
    def _set(waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]) -> None:
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    async def wait(self, key: str, seen: int, timeout: float) -> bool:
        """True once the key's sequence differs from `seen` or the waker stops, False after
        `timeout` seconds."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.setdefault(key, set()).add(entry)
        try:
            if self._waker.seq(key) != seen or self._waker.stopping.is_set():
                return True
            try:
                await asyncio.wait_for(entry[1].wait(), timeout)
            except TimeoutError:
                return False
            return True
        finally:
            with self._lock:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(entry)
                    if not waiters:
                        del self._waiters[key]


_WAITS: dict[int, tuple[Waker, AsyncWaits]] = {}
_WAITS_LOCK = threading.Lock()


def _async_waits(waker: Waker) -> AsyncWaits:
    with _WAITS_LOCK:
        found = _WAITS.get(id(waker))
        if found is None or found[0] is not waker:
            found = (waker, AsyncWaits(waker))
            _WAITS[id(waker)] = found
        return found[1]


def _pending(rt: Runtime, host: str, busy: list[str]) -> TaskList:
    with rt.db.read() as session:
        return TaskList(tasks=service.pending_work(session, host, busy))


@router.post("/tasks/poll")
async def fleet_work(poll: FleetPoll, rt: Runtime = Depends(agent)) -> FleetTaskList:
    """Long poll for one process serving many hosts: answer once any of `hosts` has work other
    than `busy`, else after `wait` seconds or once the API is stopping. Tasks carry their host."""
    wait = min(poll.wait, MAX_WAIT_SECONDS)
    hosts = frozenset(poll.hosts)
    while True:
        found = await anyio.to_thread.run_sync(_fleet_pending, rt, hosts, poll.busy)
        if found.tasks or wait <= 0 or rt.waker.stopping.is_set():
            return found
        step = min(wait, FLEET_POLL_STEP_SECONDS)
        wait -= step
        await anyio.sleep(step)


def _fleet_pending(rt: Runtime, hosts: frozenset[str], busy: list[str]) -> FleetTaskList:
    with rt.db.read() as session:
        return FleetTaskList(tasks=service.pending_fleet_work(session, hosts, busy))


@router.post("/tasks/results", status_code=204)
def results(body: TaskReports, rt: Runtime = Depends(agent)) -> Response:
    service.complete_all(rt.db, body.results)  # each result alone if one cannot be applied
    return Response(status_code=204)


@router.put("/hosts/{host}/power-states", status_code=204)
def power_states(host: str, body: PowerStates, rt: Runtime = Depends(agent)) -> Response:
    with rt.db.transaction() as session:
        service.sync_power_states(session, host, body)
    return Response(status_code=204)


@router.put("/hosts/{host}/cpu-signal", status_code=204)
def report_cpu_signal(host: str, body: CpuSignal, rt: Runtime = Depends(agent)) -> Response:
    """The host's latest smoothed CPU rates per guest (kumo.agent.cpu_signal): one round of the
    rebalancer's trigger."""
    host = str(host_value(host))
    guests = {u: cpu_signal.GuestCpu(g.vcpus, g.run_cores, g.delay_cores) for u, g in body.guests.items()}
    with rt.db.transaction() as session:
        cpu_signal.record(session, host, body.cores, body.load1, guests, Policy())
    return Response(status_code=204)


@router.get("/instances/{instance_uuid}/metadata")
def instance_metadata(instance_uuid: str, rt: Runtime = Depends(agent)) -> Response:
    """Everything the metadata service and the config drive need of one instance (the bundle
    of kumo.metadata.bundle), for an agent's edge cache: one read per instance per expiry."""
    with rt.db.read() as session:
        bundle = metadata_backend.read_bundle(session, instance_uuid)
    return Response(bundle.model_dump_json(), media_type="application/json")


@router.get("/images/{image_id}")
def image_metadata(image_id: str, rt: Runtime = Depends(agent)) -> dict[str, Any]:
    """The image as Glance shows it (os_hash_value, disk_format, kernel_id…) for a host's cache."""
    with rt.db.read() as session:
        return image_views.image(images.get_image(session, AGENT_CONTEXT, image_id))


@router.put("/images/{image_id}/file", status_code=204)
def upload_image_file(
    image_id: str, request: Request, rt: Runtime = Depends(agent), store: ImageStore = Depends(image_store)
) -> Response:
    """A host's snapshot of a guest's disk (createImage, shelve), streamed into the queued image
    the API made for it: chunk by chunk, never whole in memory (kumo.image.service.upload_data)."""
    images.upload_data(rt.db, store, AGENT_CONTEXT, image_id, upload_chunks(request))
    log.info("image %s uploaded by an agent", image_id)
    return Response(status_code=204)


@router.get("/images/{image_id}/file")
def image_file(
    image_id: str, rt: Runtime = Depends(agent), store: ImageStore = Depends(image_store)
) -> Response:
    data = images.open_data(rt.db, store, AGENT_CONTEXT, image_id)
    if data.chunks is None:
        return Response(status_code=204)
    log.info("image %s (%s bytes) downloaded by an agent", image_id, data.size)
    return StreamingResponse(
        _counted(data.chunks),
        media_type="application/octet-stream",
        headers={"Content-Length": str(data.size)},
    )


def _counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """`chunks`, each counted in IMAGE_BYTES_TO_AGENTS once the server asks for the next one
    (it was written to the connection): an aborted download counts what was sent, not its size."""
    for chunk in chunks:
        yield chunk
        IMAGE_BYTES_TO_AGENTS.inc(len(chunk))


@router.put("/hosts/{host}/image-peer", status_code=204)
def register_image_peer(host: str, body: ImagePeerReport, rt: Runtime = Depends(agent)) -> Response:
    """Where the host's agent serves its verified cached images to its rack's peers."""
    with rt.db.transaction() as session:
        precache.register_peer(session, host, body.url)
    return Response(status_code=204)


@router.put("/hosts/{host}/image-cache", status_code=204)
def report_image_cache(host: str, body: ImageCacheReport, rt: Runtime = Depends(agent)) -> Response:
    """The images the host holds verified copies of (a precache job marks them `existing`)."""
    with rt.db.transaction() as session:
        precache.report_cache(session, host, body.images)
    return Response(status_code=204)


@router.post("/precache/tickets")
def precache_ticket(body: TicketRequest, rt: Runtime = Depends(agent)) -> dict[str, Any]:
    """A short-lived ticket for one planned peer transfer (403 when no job planned it)."""
    with rt.db.read() as session:
        return precache.ticket_for(
            session,
            precache.ticket_key(rt.agent_token, rt.settings),
            body.image_id,
            body.sender,
            body.receiver,
        )


@router.put("/precache/progress", status_code=204)
def precache_progress(body: PrecacheProgress, rt: Runtime = Depends(agent)) -> Response:
    """A host's copy in flight: its bytes so far (the job's status shows them)."""
    with rt.db.transaction() as session:
        precache.record_progress(
            session, body.job_id, body.host, body.image_id, body.source, body.bytes, body.attempt
        )
    return Response(status_code=204)
