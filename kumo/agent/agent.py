"""`kumo agent`: one per hypervisor. Registers its host, heartbeats, long-polls the API for
work, runs it through its driver and reports back — all over the internal HTTP API.

Nothing is lost when the API or the agent dies: tasks stay `pending` in the database until a
result is accepted, a restarted agent receives them again, and every driver operation is
idempotent. Tasks of one instance run in order; different instances run in parallel.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from kumo.agent import dhcp_wait
from kumo.agent.cpu_signal import CpuSignal
from kumo.agent.drivers.base import ComputeDriver, DriverError, Upload
from kumo.agent.firewall_sync import FirewallSync
from kumo.agent.imagecache import HttpImageSource, ImageCache
from kumo.agent.link import ApiLink, crashed
from kumo.agent.netsync import NetworkSync
from kumo.agent.precache import PeerServer, Precacher
from kumo.agent.protocol import HostReport, TaskOut, TaskResult
from kumo.compute.precache import tickets
from kumo.compute.states import PowerState
from kumo.logs import request_id_var
from kumo.work.kinds import (
    MOVES,
    AbortMigrationPayload,
    ActionPayload,
    CleanupPayload,
    ConsolePayload,
    DiagnosticsPayload,
    EvacuatePayload,
    InterfacePayload,
    MovePayload,
    PayloadError,
    PrepareMigrationPayload,
    RebootPayload,
    RescuePayload,
    SerialConsolePayload,
    SnapshotPayload,
    SpawnPayload,
    TaskKind,
    kind_of,
    parse,
)

log = logging.getLogger("kumo.agent")
REPORT_BATCH = 500  # results per report call
PRECACHE_WORKERS = 2  # precache copies one host runs at once (one per image of a job)
# Tasks that start a guest on its ports: they first wait for the ports' DHCP reservations.
STARTS_A_GUEST = frozenset({str(TaskKind.SPAWN), str(TaskKind.EVACUATE)})


# What a task of each kind does on the driver. A handler returns the result to report: the
# server's power state afterwards, or the answer of a question (console, image cache).
Handler = Callable[[ComputeDriver, Any], TaskResult]


def _powered(power: int) -> TaskResult:
    return TaskResult(ok=True, power_state=power)


def _spawn(driver: ComputeDriver, p: SpawnPayload | EvacuatePayload) -> TaskResult:
    return _powered(driver.spawn(p.instance))  # an evacuated guest is built again from its image


def _delete(driver: ComputeDriver, p: ActionPayload) -> TaskResult:
    driver.destroy(p.instance)
    return _powered(int(PowerState.NOSTATE))


def _cleanup(driver: ComputeDriver, p: CleanupPayload) -> TaskResult:
    driver.destroy(p.instance)  # back after being down: a guest deleted or moved meanwhile
    return TaskResult(ok=True)


def _reboot(hard: bool) -> Handler:
    def reboot(driver: ComputeDriver, p: RebootPayload) -> TaskResult:
        return _powered(driver.reboot(p.instance, hard=hard))

    return reboot


def _move(live: bool) -> Handler:
    def move(driver: ComputeDriver, p: MovePayload) -> TaskResult:
        return _powered(driver.migrate(p.instance, p.dest, live=live, target=p.target))

    return move


def _cold_move(driver: ComputeDriver, p: MovePayload) -> TaskResult:
    """A cold migration, a resize or its revert: to the prepared destination, or, with no
    target (a resize on its own host, or its revert), here by giving the guest its spec's flavor."""
    if p.target is None and p.move != TaskKind.MIGRATE:
        return _powered(driver.resize(p.instance))
    return _powered(driver.migrate(p.instance, p.dest, live=False, target=p.target))


def _rescue(driver: ComputeDriver, p: RescuePayload) -> TaskResult:
    return _powered(driver.rescue(p.instance, p.image_ref, p.admin_pass))


def _crash_dump(driver: ComputeDriver, p: ActionPayload) -> TaskResult:
    driver.trigger_crash_dump(p.instance)
    return TaskResult(ok=True)


def _diagnostics(driver: ComputeDriver, p: DiagnosticsPayload) -> TaskResult:
    return TaskResult(ok=True, details={"diagnostics": driver.diagnostics(p.instance)})


def _attach_interface(driver: ComputeDriver, p: InterfacePayload) -> TaskResult:
    driver.attach_interface(p.instance, p.port)
    return TaskResult(ok=True)


def _detach_interface(driver: ComputeDriver, p: InterfacePayload) -> TaskResult:
    driver.detach_interface(p.instance, p.port)
    return TaskResult(ok=True)


def _prepare_migration(driver: ComputeDriver, p: PrepareMigrationPayload) -> TaskResult:
    # on the destination, before the source moves
    return TaskResult(ok=True, details={"target": driver.prepare_migration(p.instance)})


def _abort_migration(driver: ComputeDriver, p: AbortMigrationPayload) -> TaskResult:
    driver.abort_migration(p.instance)  # on the destination, after a failed move
    return TaskResult(ok=True)


def _console(driver: ComputeDriver, p: ConsolePayload) -> TaskResult:
    return TaskResult(ok=True, details={"output": driver.console_output(p.instance, p.length)})


def _serial_console(driver: ComputeDriver, p: SerialConsolePayload) -> TaskResult:
    return TaskResult(ok=True, details=driver.serial_console(p.instance))


def _shelve_offload(driver: ComputeDriver, p: ActionPayload) -> TaskResult:
    driver.destroy(p.instance)  # its disk is in the shelve snapshot
    return _powered(int(PowerState.NOSTATE))


def _no_upload(driver: ComputeDriver, p: SnapshotPayload) -> TaskResult:
    """A snapshot needs the agent's link to the API (Agent registers the real handler)."""
    return TaskResult(ok=False, error="this agent cannot upload images")


HANDLERS: Mapping[TaskKind, Handler] = {
    TaskKind.SPAWN: _spawn,
    TaskKind.EVACUATE: _spawn,
    TaskKind.DELETE: _delete,
    TaskKind.CLEANUP: _cleanup,
    TaskKind.START: lambda driver, p: _powered(driver.power_on(p.instance)),
    TaskKind.STOP: lambda driver, p: _powered(driver.power_off(p.instance)),
    TaskKind.REBOOT: _reboot(hard=False),
    TaskKind.REBOOT_HARD: _reboot(hard=True),
    TaskKind.REBUILD: lambda driver, p: _powered(driver.rebuild(p.instance, p.image_ref)),
    TaskKind.ATTACH_INTERFACE: _attach_interface,
    TaskKind.DETACH_INTERFACE: _detach_interface,
    TaskKind.LIVE_MIGRATE: _move(live=True),
    TaskKind.MIGRATE: _cold_move,
    TaskKind.REVERT_RESIZE: _cold_move,
    TaskKind.RESIZE: _cold_move,
    TaskKind.PREPARE_MIGRATION: _prepare_migration,
    TaskKind.ABORT_MIGRATION: _abort_migration,
    TaskKind.IMAGE_CACHE: lambda driver, p: TaskResult(
        ok=True, details={"images": driver.image_cache_report()}
    ),
    TaskKind.CONSOLE: _console,
    TaskKind.DIAGNOSTICS: _diagnostics,
    TaskKind.PAUSE: lambda driver, p: _powered(driver.pause(p.instance)),
    TaskKind.UNPAUSE: lambda driver, p: _powered(driver.unpause(p.instance)),
    TaskKind.SUSPEND: lambda driver, p: _powered(driver.suspend(p.instance)),
    TaskKind.RESUME: lambda driver, p: _powered(driver.resume(p.instance)),
    TaskKind.RESCUE: _rescue,
    TaskKind.UNRESCUE: lambda driver, p: _powered(driver.unrescue(p.instance)),
    TaskKind.TRIGGER_CRASH_DUMP: _crash_dump,
    TaskKind.SERIAL_CONSOLE: _serial_console,
    TaskKind.SHELVE_OFFLOAD: _shelve_offload,
    TaskKind.UNSHELVE: lambda driver, p: _powered(driver.power_on(p.instance)),
    TaskKind.SNAPSHOT: _no_upload,
    TaskKind.SHELVE: _no_upload,
}


# Work of an agent's other roles, not its driver's (a network host's network_sync).
RoleHandler = Callable[[Any], TaskResult]

# What an agent that enforces security groups does around its driver (kumo/agent/firewall_sync.py):
# the guest's rules are in place before these build or receive it ...
# (an interface attached: its port is bound to this host in the attach's transaction, so the
# converge before the hot-plug holds its rules)
GUARDED_STARTS = frozenset(
    {
        TaskKind.SPAWN,
        TaskKind.EVACUATE,
        TaskKind.REBUILD,
        TaskKind.PREPARE_MIGRATION,
        TaskKind.ATTACH_INTERFACE,
    }
)
# ... and rules of taps gone are removed after these (the guest left this host, or never came;
# or one of its interfaces was detached).
GUEST_GONE = frozenset(
    {
        TaskKind.DELETE,
        TaskKind.CLEANUP,
        TaskKind.ABORT_MIGRATION,
        TaskKind.DETACH_INTERFACE,
        TaskKind.SHELVE_OFFLOAD,
    }
    | MOVES
)


def guarded(driver: ComputeDriver, firewall: FirewallSync, kind: TaskKind) -> RoleHandler:
    """The driver's handler of `kind` with the firewall's step before or after it."""
    handler = HANDLERS[kind]

    def run(p: Any) -> TaskResult:
        if kind not in GUARDED_STARTS:
            result = handler(driver, p)
            if kind in GUEST_GONE and result.ok:
                firewall.after_gone(p.instance)
            return result
        try:
            firewall.before_start(p.instance)
            result = handler(driver, p)
        except BaseException:
            _unpin_failed_start(driver, firewall, kind, p)
            raise
        if not result.ok:
            _unpin_failed_start(driver, firewall, kind, p)
        return result

    return run


def _unpin_failed_start(driver: ComputeDriver, firewall: FirewallSync, kind: TaskKind, p: Any) -> None:
    """A guarded start failed (or raised): the ports it pinned must not stay pinned forever. An
    attach unpins only its port (the guest runs on); any other start unpins the guest's ports
    unless the guest exists on this host after all (its rules stay while it does)."""
    uuid = str(p.instance.get("uuid") or "")
    try:
        if kind == TaskKind.ATTACH_INTERFACE:
            firewall.unpin(uuid, str(p.port.get("id") or ""))
        elif uuid not in driver.power_states():
            firewall.unpin(uuid)
    except Exception:  # noqa: BLE001 — best effort: the task's own failure is what is reported
        log.exception("unpinning the ports of instance %s after a failed %s failed", uuid, kind)


def run_task(
    driver: ComputeDriver, task: TaskOut, roles: Mapping[TaskKind, RoleHandler] | None = None
) -> TaskResult:
    """Run a task through the handler of its kind (a role's, else the driver's), its payload
    parsed once; errors become a failed result with the message (an unknown kind; a driver's
    unexpected exception, a malformed payload, or an answer that is no power state, with its
    traceback)."""
    try:
        kind = kind_of(task.kind)
    except PayloadError as exc:
        return TaskResult(ok=False, error=str(exc))
    role = (roles or {}).get(kind)
    handler = HANDLERS.get(kind)
    if role is None and handler is None:
        if kind == TaskKind.NETWORK_SYNC:
            return TaskResult(ok=False, error="this agent serves no networks (no --network-host)")
        if kind == TaskKind.FIREWALL_SYNC:
            return TaskResult(ok=False, error="this agent enforces no security groups")
        if kind == TaskKind.PRECACHE:
            return TaskResult(
                ok=True, details={"state": "unsupported", "error": "this agent has no image cache"}
            )
        return TaskResult(ok=False, error=f"unknown task kind {task.kind}")
    try:
        if role is not None:
            return role(parse(kind, task.payload))
        assert handler is not None
        return handler(driver, parse(kind, task.payload))
    except DriverError as exc:
        return TaskResult(ok=False, error=str(exc))
    except Exception as exc:  # a driver bug must not kill the agent: report it
        return crashed(task, exc)


class Agent(ApiLink):
    def __init__(
        self,
        api_url: str,
        host: str,
        driver: ComputeDriver,
        token: str,
        heartbeat_interval: float = 10.0,
        power_sync_interval: float = 60.0,
        workers: int = 4,
        poll_wait: float = 20.0,
        rack: str | None = None,
        region: str | None = None,
        network: NetworkSync | None = None,
        supervise_interval: float = 2.0,
        firewall: FirewallSync | None = None,
        dhcp_wait_seconds: float = 30.0,
        unfiltered: bool = False,
        cpu_sample_interval: float = 10.0,
        cpu_report_interval: float = 60.0,
        cpu_smoothing_seconds: float = 60.0,
        image_cache: ImageCache | Path | None = None,
        peer_bind: str = "127.0.0.1",
        ticket_key: str = "",
        peer_slots: int = 2,
        image_report_interval: float = 60.0,
    ) -> None:
        self.host = host
        # The rebalancer's CPU steal signal (kumo/agent/cpu_signal.py): sampled, smoothed, reported.
        self.cpu_sample_interval = cpu_sample_interval
        self.cpu_report_interval = cpu_report_interval
        self.cpu_signal = CpuSignal(tau=cpu_smoothing_seconds)
        # How long a guest's start may wait for its networks to serve its DHCP reservations.
        self.dhcp_wait_seconds = dhcp_wait_seconds
        # `--network-host`: serves networks' DHCP and metadata (kumo/agent/netsync.py)
        self.network = network
        self.supervise_interval = supervise_interval
        self._roles: dict[TaskKind, RoleHandler] = {}
        if network is not None:
            network.read_state = self._network_state
            self._roles[TaskKind.NETWORK_SYNC] = network.sync
        # Enforces security groups on its guests' ports (kumo/agent/firewall_sync.py); or, with
        # `unfiltered`, runs real guests with no usable firewall: it unregisters its host.
        self.firewall = firewall
        self.unfiltered = unfiltered and firewall is None
        if firewall is not None:
            firewall.read_state = self._firewall_state
            self._roles[TaskKind.FIREWALL_SYNC] = firewall.sync
            for kind in GUARDED_STARTS | GUEST_GONE:
                self._roles[kind] = guarded(driver, firewall, kind)
        # createImage and shelve upload the guest's disk over this agent's link (_snapshot)
        self._roles[TaskKind.SNAPSHOT] = self._snapshot_task
        self._roles[TaskKind.SHELVE] = self._shelve_task
        self.rack, self.region = rack, region  # failure-domain labels reported on registration
        self.driver = driver
        self.heartbeat_interval = heartbeat_interval
        self.power_sync_interval = power_sync_interval
        self.poll_wait = poll_wait
        super().__init__(api_url, token, poll_wait, REPORT_BATCH)
        self._queues: list[queue.Queue[TaskOut]] = [queue.Queue() for _ in range(workers)]
        # The roles' tasks (network_sync, firewall_sync) run on workers of their own: a guest's
        # start waiting for its network's DHCP (`await_dhcp`) must never sit in front of the sync
        # it awaits, and a firewall change never waits behind a slow spawn, detach or migration.
        # A host's converges are serialised anyway: one role worker is enough without networks.
        role_workers = workers if network is not None else 1 if firewall is not None else 0
        self._role_queues: list[queue.Queue[TaskOut]] = [queue.Queue() for _ in range(role_workers)]
        # Precache copies (minutes each) run on workers of their own: never in front of a guest's
        # task, nor of a firewall or network converge.
        self._precache_queues: list[queue.Queue[TaskOut]] = [
            queue.Queue() for _ in range(PRECACHE_WORKERS if image_cache is not None else 0)
        ]
        self._threads: list[threading.Thread] = []
        # Image precache (kumo/agent/precache.py): copies into the host's image cache (the
        # libvirt driver's own; a directory of the agent's for the fake driver) and serves the
        # verified copies to the rack's peers.
        self.peer: PeerServer | None = None
        # The verified images of the cache are reported to the API each image_report_interval,
        # and right after a precache copy (`_cache_changed`): a job marks them `existing` at once.
        self.image_report_interval = image_report_interval
        self._cache_changed = threading.Event()
        self.image_cache: ImageCache | None = None
        if isinstance(image_cache, Path):  # the fake driver's hosts: a cache of the agent's own
            own = image_cache = ImageCache(image_cache, HttpImageSource(self.client))
            self._roles[TaskKind.IMAGE_CACHE] = lambda p: TaskResult(
                ok=True, details={"images": own.report()}
            )
        if image_cache is not None:
            self.image_cache = image_cache
            key = ticket_key.encode() if ticket_key else tickets.derive_key(token)
            self.peer = PeerServer(
                host, image_cache, key, bind=peer_bind, slots=peer_slots, changed=self._cache_changed.set
            )
            precacher = Precacher(
                host,
                image_cache,
                HttpImageSource(self.client),
                self._precache_ticket,
                progress=self._precache_progress,
            )
            self._roles[TaskKind.PRECACHE] = self._precache_run(precacher)

    def _precache_run(self, precacher: Precacher) -> RoleHandler:
        def run(p: Any) -> TaskResult:
            try:
                return precacher.run(p)
            finally:  # the cache may hold one more image: report it now
                self._cache_changed.set()

        return run

    def _precache_ticket(self, image_id: str, sender: str) -> str:
        body = {"image_id": image_id, "sender": sender, "receiver": self.host}
        return str(self._call("POST", "/precache/tickets", json=body).json()["ticket"])

    def _precache_progress(
        self, job_id: str, image_id: str, source: str, done: int, attempt: int | None = None
    ) -> bool:
        """A copy's bytes so far (one try: the next report, or the result, supersedes it).
        False when the API answers 409: the job no longer wants this copy (skipped, cancelled,
        or this attempt is not the current one)."""
        body: dict[str, Any] = {
            "job_id": job_id,
            "image_id": image_id,
            "host": self.host,
            "source": source,
            "bytes": done,
        }
        if attempt is not None:
            body["attempt"] = attempt
        return self.client.put("/precache/progress", json=body, timeout=5).status_code != 409

    def register(self) -> None:
        res = self.driver.resources()
        report = HostReport(
            name=self.host,
            vcpus=res.vcpus,
            memory_mb=res.memory_mb,
            disk_gb=res.disk_gb,
            hypervisor_type=res.hypervisor_type,
            host_ip=res.host_ip,
            rack=self.rack,
            region=self.region,
        )
        self._call("POST", "/hosts", json=report.model_dump())
        log.info(
            "registered host %s (%s vCPU, %s MB, %s GB)", self.host, res.vcpus, res.memory_mb, res.disk_gb
        )
        if self.network is not None:
            self._call("PUT", f"/network-agents/{self.host}")
            log.info("host %s serves networks", self.host)
        if self.firewall is not None:  # a sync is made pending: converge after any restart
            self._call("PUT", f"/firewall-hosts/{self.host}")
            log.info("host %s enforces security groups", self.host)
        elif self.unfiltered:  # the API gives it no firewall_sync work
            self._call("DELETE", f"/firewall-hosts/{self.host}")
            log.warning("host %s enforces no security groups: its guests run unfiltered", self.host)
        if self.peer is not None:  # where the rack's peers fetch this host's cached images
            self._call("PUT", f"/hosts/{self.host}/image-peer", json={"url": self.peer.url})
        if self.image_cache is not None:
            try:
                self.report_image_cache()
            except (httpx.HTTPStatusError, OSError) as exc:  # the report loop tries again
                log.error("image cache report of %s refused: %s", self.host, exc)

    def report_image_cache(self) -> None:
        """The ids of the cache's verified images (a few dozen UUIDs: one small PUT)."""
        assert self.image_cache is not None
        ids = self.image_cache.verified_ids()
        self._call("PUT", f"/hosts/{self.host}/image-cache", json={"images": ids})

    def _image_report_loop(self) -> None:
        while not self.stop_event.is_set():
            self._cache_changed.wait(self.image_report_interval)
            self._cache_changed.clear()
            if self.stop_event.is_set():
                return
            try:
                self.report_image_cache()
            except RuntimeError:
                return
            except (httpx.HTTPStatusError, OSError) as exc:  # the next round reports it
                log.error("image cache report of %s refused: %s", self.host, exc)

    def _upload(self, image_id: str) -> Upload:
        """Stream chunks into the image's data (PUT /internal/v1/images/{id}/file, chunked):
        one attempt, since the chunks cannot be read twice (a failed task is retried whole)."""

        def upload(chunks: Iterable[bytes]) -> None:
            try:
                resp = self.client.put(
                    f"/images/{image_id}/file",
                    content=iter(chunks),
                    headers={"Content-Type": "application/octet-stream"},
                    timeout=httpx.Timeout(None, connect=5),
                )
            except httpx.HTTPError as exc:
                raise DriverError(f"Uploading image {image_id} failed: {exc}") from exc
            if resp.status_code >= 300:
                raise DriverError(f"Uploading image {image_id} failed: {resp.status_code} {resp.text[:300]}")

        return upload

    def _image_status(self, image_id: str) -> str | None:
        resp = self.client.get(f"/images/{image_id}")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return str(resp.json().get("status"))

    def _snapshot_into(self, p: SnapshotPayload) -> int:
        """The guest's disk into image p.image_id, unless a run of this task before a restart
        uploaded it already; returns the guest's power state."""
        status = self._image_status(p.image_id)
        if status is None:
            raise DriverError(f"Image {p.image_id} was deleted before the snapshot was uploaded.")
        if status == "active":
            return self.driver.power_states().get(str(p.instance.get("uuid")), int(PowerState.NOSTATE))
        return self.driver.snapshot(p.instance, self._upload(p.image_id))

    def _snapshot_task(self, p: SnapshotPayload) -> TaskResult:
        return _powered(self._snapshot_into(p))

    def _shelve_task(self, p: SnapshotPayload) -> TaskResult:
        """Power off, snapshot, and (offload) destroy the guest, its rules with it. Run again
        after a restart that followed an offload (the image active, the guest gone): done."""
        uuid = str(p.instance.get("uuid"))
        if (
            p.offload
            and uuid not in self.driver.power_states()
            and self._image_status(p.image_id) == "active"
        ):
            return _powered(int(PowerState.NOSTATE))
        self.driver.power_off(p.instance)
        power = self._snapshot_into(p)
        if not p.offload:
            return _powered(power)
        self.driver.destroy(p.instance)
        if self.firewall is not None:
            self.firewall.after_gone(p.instance)
        return _powered(int(PowerState.NOSTATE))

    def _firewall_state(self, port_ids: Collection[str]) -> dict[str, Any]:
        """The host's firewall state from the API, with these ports besides its bound ones."""
        params = [("port_id", pid) for pid in sorted(port_ids)]
        return dict(self._call("GET", f"/hosts/{self.host}/firewall", params=params).json())

    def _dhcp_served(self, network_id: str, generation: int, wait: int) -> dict[str, Any]:
        """One long poll (no retries: kumo/agent/dhcp_wait.py gives up instead)."""
        resp = self.client.get(
            f"/networks/{network_id}/dhcp-generation",
            params={"min": str(generation), "wait": str(wait)},
            timeout=httpx.Timeout(wait + 10, connect=5),
        )
        resp.raise_for_status()
        return dict(resp.json())

    def await_dhcp(self, task: TaskOut) -> dhcp_wait.DhcpWait | None:
        """Before a task starts a guest: its ports' reservations are served, or the bounded wait
        ran out (never raises)."""
        if task.kind not in STARTS_A_GUEST:
            return None
        instance = task.payload.get("instance")
        if not isinstance(instance, dict) or not instance.get("ports"):
            return None
        return dhcp_wait.await_served(self._dhcp_served, instance, self.dhcp_wait_seconds)

    def _network_state(self, network_id: str) -> dict[str, Any] | None:
        """A network's DHCP state from the API; None when it is gone."""
        try:
            return dict(self._call("GET", f"/networks/{network_id}/dhcp").json())
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404:
                return None
            raise

    # -- loops ------------------------------------------------------------------------------
    def start(self) -> Agent:
        if self.peer is not None:
            self.peer.start()
        self.register()
        targets = [self._heartbeat_loop, self._poll_loop, self._power_sync_loop, self._report_loop]
        if self.cpu_sample_interval > 0:
            targets.append(self._cpu_signal_loop)
        if self.image_cache is not None:
            targets.append(self._image_report_loop)
        queues = [*self._queues, *self._role_queues, *self._precache_queues]
        targets += [lambda q=q: self._worker(q) for q in queues]  # type: ignore[misc]
        if self.firewall is not None:
            targets.append(self._firewall_retry_loop)
        if self.network is not None:
            network = self.network
            targets.append(lambda: network.plane.supervise_forever(self.stop_event, self.supervise_interval))
        for target in targets:
            thread = threading.Thread(target=target, name=f"agent-{self.host}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop taking work. Threads are daemons: a long poll in flight is simply abandoned
        (its tasks stay pending in the database for the next start)."""
        self.stop_event.set()
        self._cache_changed.set()
        if self.peer is not None:
            self.peer.stop()
        deadline = time.monotonic() + 2.0
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.client.close()

    def _heartbeat_loop(self) -> None:
        while not self.stop_event.wait(self.heartbeat_interval):
            try:
                self._call("PUT", f"/hosts/{self.host}/heartbeat")
            except RuntimeError:
                return
            except httpx.HTTPStatusError as exc:  # refused this once: the next one may not be
                log.error("heartbeat of %s refused: %s", self.host, exc)

    def _firewall_retry_loop(self, interval: float = 1.0) -> None:
        """A failed firewall converge is retried after its backoff (FirewallSync.retry_due): the
        host registers again, which makes a sync pending (kumo/network/firewall.py), until one
        succeeds."""
        firewall = self.firewall
        assert firewall is not None
        while not self.stop_event.wait(interval):
            if not firewall.retry_due():
                continue
            log.warning("the firewall of %s is behind after a failed converge: asking for a sync", self.host)
            try:
                self._call("PUT", f"/firewall-hosts/{self.host}")
            except RuntimeError:
                return
            except httpx.HTTPStatusError as exc:  # the next backoff tries again
                log.error("asking for a firewall sync of %s refused: %s", self.host, exc)

    def _power_sync_loop(self) -> None:
        while not self.stop_event.wait(self.power_sync_interval):
            try:
                states = self.driver.power_states()
            except DriverError as exc:  # the hypervisor is down: try again next round
                log.warning("power sync on %s skipped: %s", self.host, exc)
                continue
            except Exception:  # a driver bug: this round is lost, not the loop
                log.exception("power sync on %s crashed", self.host)
                continue
            try:
                self._call("PUT", f"/hosts/{self.host}/power-states", json={"states": states})
            except RuntimeError:
                return
            except httpx.HTTPStatusError as exc:
                log.error("power states of %s refused: %s", self.host, exc)

    def _cpu_signal_loop(self) -> None:
        """Sample every guest's vCPU counters each cpu_sample_interval; report the smoothed rates
        each cpu_report_interval (a failed sample or report is skipped, never the loop)."""
        next_report = time.monotonic() + self.cpu_report_interval
        while not self.stop_event.wait(self.cpu_sample_interval):
            try:
                self.cpu_signal.add(self.driver.cpu_stats())
            except DriverError as exc:
                log.warning("CPU sample on %s skipped: %s", self.host, exc)
                continue
            except Exception:
                log.exception("CPU sample on %s crashed", self.host)
                continue
            if time.monotonic() < next_report:
                continue
            next_report = time.monotonic() + self.cpu_report_interval
            try:
                self._call("PUT", f"/hosts/{self.host}/cpu-signal", json=self.cpu_signal.report())
            except RuntimeError:
                return
            except httpx.HTTPStatusError as exc:
                log.error("CPU signal of %s refused: %s", self.host, exc)

    def _poll_loop(self) -> None:
        while not self.stop_event.is_set():
            with self._lock:
                busy = sorted(self._in_flight)
            try:
                resp = self._call(
                    "POST", f"/hosts/{self.host}/tasks/poll", json={"wait": self.poll_wait, "busy": busy}
                )
            except RuntimeError:
                return
            except httpx.HTTPStatusError as exc:
                log.error("poll of %s refused: %s", self.host, exc)
                self.stop_event.wait(self.poll_wait)
                continue
            for raw in resp.json()["tasks"]:
                try:
                    task = TaskOut.model_validate(raw)
                except ValueError as exc:  # one malformed task must not stop the others
                    log.error("skipped a malformed task: %s", exc)
                    continue
                with self._lock:
                    if task.id in self._in_flight or task.id in self._recent:
                        continue
                    self._in_flight.add(task.id)
                self._dispatch(task)

    def _dispatch(self, task: TaskOut) -> None:
        """Queue a received task on its worker: one instance's tasks in order, and one network's;
        a role's own work on the role workers; precache copies on theirs."""
        key = task.instance_uuid or str(task.payload.get("network_id") or task.id)
        if task.kind == str(TaskKind.PRECACHE) and self._precache_queues:
            queues = self._precache_queues
        else:
            queues = self._role_queues if self._is_role_task(task) else self._queues
        queues[zlib.crc32(key.encode()) % len(queues)].put(task)

    def _is_role_task(self, task: TaskOut) -> bool:
        """A role's own work (network_sync, firewall_sync), not a driver task a role guards (a
        guarded spawn stays on the instance's worker, in order with its other tasks)."""
        return bool(self._role_queues) and any(
            task.kind == str(kind) for kind in self._roles if kind not in HANDLERS
        )

    def _worker(self, tasks: queue.Queue[TaskOut]) -> None:
        while not self.stop_event.is_set():
            try:
                task = tasks.get(timeout=0.5)
            except queue.Empty:
                continue
            token = request_id_var.set(task.request_id or "-")
            try:
                log.info("running %s %s for %s", task.kind, task.id, task.instance_uuid)
                try:
                    self.await_dhcp(task)
                    result = run_task(self.driver, task, self._roles)
                except Exception as exc:  # whatever raises, the task fails and the worker goes on
                    result = crashed(task, exc)
                log.info(
                    "%s %s for %s: %s",
                    task.kind,
                    task.id,
                    task.instance_uuid,
                    "ok" if result.ok else result.error,
                )
            finally:
                request_id_var.reset(token)
            self._results.put((task, result))


def wait_for_api(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url.rstrip("/") + "/compute/", timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
