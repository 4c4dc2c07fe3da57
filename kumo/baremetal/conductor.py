"""`kumo conductor --name C`: the agent role for BMCs. Heartbeats its registration (the answer
names the nodes it owns now), long-polls the fleet endpoint for those nodes' tasks, runs them
through the nodes' drivers and reports results in batches; every so often it reads all its
nodes' power states in one bounded concurrent pass and reports them in one call.

Ownership is the API's (rendezvous hashing over live conductors, kumo/baremetal/ownership.py):
a conductor learns its nodes from each heartbeat, never runs a task for a node it no longer
owns, and abandons (without reporting) a deploy in flight on a node that moved away, which the
new owner then runs from the start. Tasks stay pending in the database until a result is
accepted, so a conductor that dies loses nothing: its nodes' tasks go to their next owner.

Concurrency: tasks of one node run in order; different nodes' tasks run on a bounded thread
pool; every BMC request (Redfish or fake) runs under one semaphore, so a conductor never has
more than `bmc_concurrency` requests in flight at its BMCs, whatever the number of nodes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from kumo.agent.console_tail import tail_lines
from kumo.agent.link import ApiLink, crashed
from kumo.agent.protocol import HostTask, TaskResult
from kumo.baremetal.drivers.base import (
    POWER_OFF,
    POWER_ON,
    REBOOTING,
    SOFT_POWER_OFF,
    BMCError,
    DeployAborted,
    DeployRequest,
    Hardware,
    Limiter,
    Node,
    PowerTimeout,
)
from kumo.baremetal.drivers.load import load_hardware
from kumo.compute.states import PowerState
from kumo.logs import request_id_var
from kumo.work.kinds import (
    ConsolePayload,
    NodePowerPayload,
    PayloadError,
    RebuildPayload,
    SpawnPayload,
    TaskKind,
    kind_of,
    parse,
)

log = logging.getLogger("kumo.conductor")

DEFAULT_DEPLOY_TIMEOUT = 1800.0
DEFAULT_SHUTDOWN_TIMEOUT = 30.0
SOFT_REBOOTING = "soft rebooting"
REPORT_BATCH = 500

HardwareLoader = Callable[[Node, Limiter], Hardware]


# ----------------------------------------------------------------------------- one task


def _instance_power(state: str) -> int:
    return int(PowerState.RUNNING if state == POWER_ON else PowerState.SHUTDOWN)


@dataclass(frozen=True)
class NodeExtras:
    """What the baremetal on-enqueued hook adds to a node's task payload for its conductor
    (kumo.baremetal.service.on_task_enqueued), beside the kind's own payload."""

    image_ref: str | None
    deploy_timeout: float
    shutdown_timeout: float

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> NodeExtras:
        image_ref = raw.get("image_ref")
        return cls(
            image_ref=image_ref if isinstance(image_ref, str) else None,
            deploy_timeout=float(raw.get("deploy_timeout") or DEFAULT_DEPLOY_TIMEOUT),
            shutdown_timeout=float(raw.get("shutdown_timeout") or DEFAULT_SHUTDOWN_TIMEOUT),
        )


# What a task of each kind does on a node's hardware (docs/baremetal.md's table); a handler
# returns the node's power state afterwards.
NodeHandler = Callable[[Hardware, Any, NodeExtras, threading.Event], str]


def _deploy(hw: Hardware, p: SpawnPayload | RebuildPayload, extras: NodeExtras, stop: threading.Event) -> str:
    # deploy powers off first: a rebuild is a redeploy
    hw.deploy.deploy(
        DeployRequest(timeout=extras.deploy_timeout, instance=p.instance, image_ref=extras.image_ref), stop
    )
    return POWER_ON


def _tear_down(hw: Hardware, _: Any, __: NodeExtras, ___: threading.Event) -> str:
    hw.deploy.tear_down()
    return POWER_OFF


def _start(hw: Hardware, _: Any, __: NodeExtras, ___: threading.Event) -> str:
    hw.power.set_power_state(POWER_ON)
    return POWER_ON


def _stop(hw: Hardware, _: Any, extras: NodeExtras, __: threading.Event) -> str:
    _soft_power_off(hw, extras.shutdown_timeout)
    return POWER_OFF


def _reboot(soft: bool) -> NodeHandler:
    def reboot(hw: Hardware, _: Any, __: NodeExtras, ___: threading.Event) -> str:
        hw.power.reboot(soft=soft)
        return POWER_ON

    return reboot


def _set_power(hw: Hardware, p: NodePowerPayload, _: NodeExtras, __: threading.Event) -> str:
    return _node_power(hw, p.target, float(p.timeout or DEFAULT_SHUTDOWN_TIMEOUT))


def _read_power(hw: Hardware, _: Any, __: NodeExtras, ___: threading.Event) -> str:
    return hw.power.get_power_state()  # adoption reads, never power-cycles


HANDLERS: Mapping[TaskKind, NodeHandler] = {
    TaskKind.SPAWN: _deploy,
    TaskKind.REBUILD: _deploy,
    TaskKind.DELETE: _tear_down,
    TaskKind.NODE_CLEAN: _tear_down,
    TaskKind.START: _start,
    TaskKind.STOP: _stop,
    TaskKind.REBOOT: _reboot(soft=True),
    TaskKind.REBOOT_HARD: _reboot(soft=False),
    TaskKind.NODE_POWER: _set_power,
    TaskKind.NODE_VERIFY: _read_power,
    TaskKind.NODE_ADOPT: _read_power,
}
CONSOLE_CHARS = 1 << 20  # the tail a console answer carries at most


def console_output(hw: Hardware, lines: int | None) -> str:
    """The node's serial console as the machine wrote it (its last `lines` lines by Nova's
    rule, console_tail.tail_lines; all when None or negative), at most CONSOLE_CHARS of its
    end; empty when the node has no console kumo reads."""
    if hw.console is None:
        return ""
    return tail_lines(hw.console.read_since(0)[-CONSOLE_CHARS:].replace("\r\n", "\n"), lines)


NODE_KINDS = frozenset({TaskKind.NODE_VERIFY, TaskKind.NODE_CLEAN, TaskKind.NODE_ADOPT, TaskKind.NODE_POWER})


def run_task(hw: Hardware, task: HostTask, stop: threading.Event) -> TaskResult | None:
    """Run one task on a node's hardware through the handler of its kind, its payload parsed
    once. Returns the result to report, or None when the task was abandoned (the conductor is
    stopping or lost the node) and must stay pending."""
    try:
        kind = kind_of(task.kind)
    except PayloadError:
        kind = None
    handler = HANDLERS.get(kind) if kind is not None else None
    if kind == TaskKind.CONSOLE:  # a question: the answer, no state
        length = ConsolePayload.from_json(task.payload).length
        try:
            return TaskResult(ok=True, details={"output": console_output(hw, length)})
        except OSError as exc:
            return TaskResult(ok=False, error=f"console of node {task.host}: {exc}")
    if kind is None or handler is None:
        return TaskResult(ok=False, error=f"unknown task kind {task.kind}")
    try:
        state = handler(hw, parse(kind, task.payload), NodeExtras.from_json(task.payload), stop)
    except DeployAborted as exc:
        log.info("task %s (%s) abandoned: %s", task.id, task.kind, exc)
        return None
    except BMCError as exc:
        return TaskResult(ok=False, error=str(exc))
    except Exception as exc:  # a driver bug must not kill the conductor: report it
        return crashed(task, exc)
    power: int | None = None
    if task.instance_uuid is not None and kind not in NODE_KINDS:
        power = int(PowerState.NOSTATE) if kind == TaskKind.DELETE else _instance_power(state)
    return TaskResult(ok=True, power_state=power, details={"power_state": state})


def _soft_power_off(hw: Hardware, timeout: float) -> None:
    """As Nova's ironic driver: a soft power off, hard once the timeout has passed."""
    try:
        hw.power.set_power_state(SOFT_POWER_OFF, timeout=timeout)
    except PowerTimeout:
        log.info("soft power off timed out after %s s: powering off", timeout)
        hw.power.set_power_state(POWER_OFF)


def _node_power(hw: Hardware, target: str, timeout: float) -> str:
    if target == POWER_ON:
        hw.power.set_power_state(POWER_ON)
        return POWER_ON
    if target == POWER_OFF:
        hw.power.set_power_state(POWER_OFF)
        return POWER_OFF
    if target == SOFT_POWER_OFF:
        _soft_power_off(hw, timeout)
        return POWER_OFF
    if target in (REBOOTING, SOFT_REBOOTING):
        hw.power.reboot(soft=target == SOFT_REBOOTING)
        return POWER_ON
    raise BMCError(f"unsupported power target {target!r}")


# ----------------------------------------------------------------------------- power sync


@dataclass(frozen=True)
class SyncPass:
    states: dict[str, str | None]  # node uuid → power state, None: the BMC did not answer
    seconds: float
    cpu_seconds: float  # this process's CPU time during the pass (all threads)


def power_sync_pass(
    nodes: Iterable[Node], hardware: Callable[[Node], Hardware], pool: ThreadPoolExecutor
) -> SyncPass:
    """Read every node's power state, concurrently on `pool` (whose size and the hardware's
    limiter bound the BMC requests in flight). An unreachable BMC reads as None."""

    def read(node: Node) -> tuple[str, str | None]:
        try:
            return node.uuid, hardware(node).power.get_power_state()
        except BMCError as exc:
            log.warning("power sync: %s", exc)
            return node.uuid, None
        except Exception:  # noqa: BLE001 — one node's bug must not stop the pass
            log.exception("power sync of node %s crashed", node.uuid)
            return node.uuid, None

    started, cpu = time.perf_counter(), time.process_time()
    states = dict(pool.map(read, list(nodes)))
    return SyncPass(states, time.perf_counter() - started, time.process_time() - cpu)


def _readable_nodes(raw_nodes: Iterable[Any]) -> list[Node]:
    """The nodes of a heartbeat's answer; one this conductor cannot read (a row written by
    another version) is left out, alone, and its tasks wait for a conductor that can."""
    nodes = []
    for raw in raw_nodes:
        try:
            nodes.append(Node.from_wire(raw))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            named = raw.get("uuid") if isinstance(raw, Mapping) else None  # never driver_info: secrets
            log.error("node %s left out: %s", named, type(exc).__name__)
    return nodes


# ----------------------------------------------------------------------------- the process


class Conductor(ApiLink):
    def __init__(
        self,
        api_url: str,
        name: str,
        token: str,
        *,
        heartbeat_interval: float = 5.0,
        power_sync_interval: float = 60.0,
        poll_wait: float = 5.0,
        workers: int = 32,
        bmc_concurrency: int = 16,
        hardware_loader: HardwareLoader = load_hardware,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.heartbeat_interval = heartbeat_interval
        self.power_sync_interval = power_sync_interval
        self.poll_wait = poll_wait
        super().__init__(api_url, token, poll_wait, REPORT_BATCH, transport)
        self.limiter = threading.BoundedSemaphore(bmc_concurrency)
        self._load_hardware = hardware_loader
        self._nodes: dict[str, Node] = {}
        self.conductors: list[str] = []
        self.assignment: str | None = None  # version of the nodes held (the API's), None: none yet
        self._nodes_changed = threading.Event()
        self._hardware: dict[str, tuple[Node, Hardware]] = {}
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=f"conductor-{name}")
        self._sync_pool = ThreadPoolExecutor(bmc_concurrency, thread_name_prefix=f"sync-{name}")
        self._queues: dict[str, deque[HostTask]] = {}  # node uuid → its tasks not started yet
        self._running: set[str] = set()  # nodes with a drain on the pool
        # nodes a task was queued for since the power sync pass in progress began: what that
        # pass read of them may predate the task's result, and must not overwrite it
        self._tasked_during_sync: set[str] = set()
        self._aborts: dict[str, threading.Event] = {}  # node uuid → set when the node moves away
        self._threads: list[threading.Thread] = []
        self.last_sync: SyncPass | None = None

    # -- ownership ----------------------------------------------------------------------------
    @property
    def nodes(self) -> dict[str, Node]:
        with self._lock:
            return dict(self._nodes)

    def heartbeat(self) -> None:
        """Register / heartbeat; the answer is the set of nodes this conductor owns now, or
        "unchanged" when the assignment it holds (the version it sends) is still current. A
        conductor that starts holds none, so it always learns its whole assignment."""
        with self._lock:
            held = self.assignment
        body = self._call("PUT", f"/conductors/{self.name}", json={"assignment": held}).json()
        conductors, raw_nodes = body.get("conductors", []), body.get("nodes")
        if raw_nodes is None:  # no list: keep the nodes held
            with self._lock:
                self.conductors = sorted(conductors)
                if not (body.get("unchanged") and held is not None and body.get("assignment") == held):
                    self.assignment = None  # not the answer to what was sent: ask for the list
            return
        self._own(_readable_nodes(raw_nodes), conductors)
        with self._lock:
            self.assignment = body.get("assignment")

    def _own(self, nodes: list[Node], conductors: list[str]) -> None:
        fresh = {n.uuid: n for n in nodes}
        with self._lock:
            gained = fresh.keys() - self._nodes.keys()
            lost = self._nodes.keys() - fresh.keys()
            self._nodes = fresh
            self.conductors = sorted(conductors)
            for uuid in lost:
                for task in self._queues.pop(uuid, deque()):
                    self._in_flight.discard(task.id)
                abort = self._aborts.pop(uuid, None)  # the task running holds it; a new one gets a fresh one
                if abort is not None:
                    abort.set()
                self._hardware.pop(uuid, None)
        if gained or lost:
            log.info(
                "conductor %s owns %d nodes (+%d -%d) among %d live conductors",
                self.name,
                len(fresh),
                len(gained),
                len(lost),
                len(conductors),
            )
            self._nodes_changed.set()

    def owns(self, uuid: str) -> bool:
        with self._lock:
            return uuid in self._nodes

    def hardware(self, node: Node) -> Hardware:
        """The node's interfaces, kept while its driver and driver_info stay the same (so a
        Redfish session outlives one call)."""
        with self._lock:
            cached = self._hardware.get(node.uuid)
        if (
            cached is not None
            and cached[0].driver == node.driver
            and cached[0].driver_info == node.driver_info
        ):
            return cached[1]
        hw = self._load_hardware(node, self.limiter)
        with self._lock:
            self._hardware[node.uuid] = (node, hw)
        return hw

    # -- loops -------------------------------------------------------------------------------
    def start(self) -> Conductor:
        self.heartbeat()
        for target in (self._heartbeat_loop, self._poll_loop, self._report_loop, self._power_sync_loop):
            thread = threading.Thread(target=target, name=f"conductor-{self.name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("conductor %s started with %d nodes", self.name, len(self._nodes))
        return self

    def stop(self) -> None:
        """Stop taking work and abandon what runs (deploys stop waiting; nothing more is
        reported, so unfinished tasks stay pending for the nodes' next owner)."""
        self.signal_stop()
        deadline = time.monotonic() + 2.0
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._sync_pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    def signal_stop(self) -> None:
        """The first half of stop(), which returns at once (stop several conductors together)."""
        self.stop_event.set()
        with self._lock:
            for abort in self._aborts.values():
                abort.set()

    def _heartbeat_loop(self) -> None:
        while not self.stop_event.wait(self.heartbeat_interval):
            try:
                self.heartbeat()
            except RuntimeError:
                return
            except httpx.HTTPStatusError as exc:
                log.error("heartbeat refused: %s", exc)
            except Exception:  # an answer it cannot read: keep the nodes held, heartbeat again
                log.exception("heartbeat of %s failed", self.name)

    def _poll_loop(self) -> None:
        while not self.stop_event.is_set():
            with self._lock:
                hosts = sorted(self._nodes)
                busy = sorted(self._in_flight)
                self._nodes_changed.clear()
            if not hosts:  # nothing to poll for until a heartbeat brings nodes
                self._nodes_changed.wait(self.poll_wait)
                continue
            try:
                resp = self._call(
                    "POST", "/tasks/poll", json={"hosts": hosts, "wait": self.poll_wait, "busy": busy}
                )
            except RuntimeError:
                return
            except httpx.HTTPStatusError as exc:
                log.error("poll refused: %s", exc)
                self.stop_event.wait(self.poll_wait)
                continue
            for raw in resp.json()["tasks"]:
                try:
                    task = HostTask.model_validate(raw)
                except ValueError as exc:  # one malformed task must not stop the others
                    log.error("skipped a malformed task: %s", exc)
                    continue
                self.dispatch(task)

    def dispatch(self, task: HostTask) -> bool:
        """Queue a task behind its node's earlier ones (a console question, which changes
        nothing, is answered at once, beside a deploy that waits for that console); False when
        skipped (already running or reported, or the node is not this conductor's)."""
        with self._lock:
            if task.id in self._in_flight or task.id in self._recent or self.stop_event.is_set():
                return False
            if task.host not in self._nodes:
                log.info("task %s for node %s skipped: not owned by %s", task.id, task.host, self.name)
                return False
            self._in_flight.add(task.id)
            if task.kind == TaskKind.CONSOLE:
                node = self._nodes[task.host]
                self._pool.submit(self._run_one, node, task, threading.Event())
                return True
            self._queues.setdefault(task.host, deque()).append(task)
            self._tasked_during_sync.add(task.host)
            if task.host in self._running:
                return True
            self._running.add(task.host)
        self._pool.submit(self._drain, task.host)
        return True

    def _drain(self, uuid: str) -> None:
        """Run the node's queued tasks in order, then give the pool thread back."""
        while True:
            with self._lock:
                pending = self._queues.get(uuid)
                if not pending or self.stop_event.is_set():
                    self._queues.pop(uuid, None)
                    self._running.discard(uuid)
                    if uuid not in self._nodes:
                        self._aborts.pop(uuid, None)
                    return
                task = pending.popleft()
                node = self._nodes.get(uuid)
                abort = self._aborts.setdefault(uuid, threading.Event())
            if node is None:  # moved away between dispatch and now
                with self._lock:
                    self._in_flight.discard(task.id)
                continue
            try:
                self._run_one(node, task, abort)
            except Exception as exc:  # the task fails; the node's next tasks still run
                self._results.put((task, crashed(task, exc)))

    def _run_one(self, owned: Node, task: HostTask, abort: threading.Event) -> None:
        raw = task.payload.get("node")
        node = Node.from_wire(raw) if isinstance(raw, dict) else owned  # the task's view is newer
        token = request_id_var.set(task.request_id or "-")
        try:
            log.info("running %s %s on node %s", task.kind, task.id, node.label)
            try:
                hw = self.hardware(node)
            except BMCError as exc:
                result: TaskResult | None = TaskResult(ok=False, error=str(exc))
            except Exception as exc:  # a driver that cannot even load: the task fails, the node goes on
                log.exception("loading driver %s for node %s failed", node.driver, node.label)
                result = TaskResult(
                    ok=False, error=f"driver {node.driver} failed to load: {type(exc).__name__}: {exc}"
                )
            else:
                result = run_task(hw, task, abort)
            if result is None or self.stop_event.is_set() or not self.owns(node.uuid):
                with self._lock:  # abandoned: stays pending for whoever owns the node
                    self._in_flight.discard(task.id)
                return
            log.info(
                "%s %s on node %s: %s", task.kind, task.id, node.label, "ok" if result.ok else result.error
            )
        finally:
            request_id_var.reset(token)
        self._results.put((task, result))

    # -- power sync ---------------------------------------------------------------------------
    def sync_power_states(self) -> SyncPass | None:
        """One pass over the owned nodes that no task is working on; reported in one call. A node
        that a task came for while the pass read it is left out: the reading may be older than
        the task's result (a tear-down's power off reported first, then overwritten by "on")."""
        with self._lock:
            busy = self._running | self._queues.keys()
            nodes = [n for u, n in self._nodes.items() if u not in busy]
            self._tasked_during_sync.clear()
        if not nodes:
            return None
        result = power_sync_pass(nodes, self.hardware, self._sync_pool)
        with self._lock:  # a node that moved away during the pass is its new owner's to report
            states = {
                u: s
                for u, s in result.states.items()
                if u in self._nodes and u not in self._tasked_during_sync
            }
        self._call("PUT", f"/conductors/{self.name}/power-states", json={"nodes": states})
        self.last_sync = result
        log.info(
            "power sync of %d nodes took %.2f s (%.3f CPU s)", len(states), result.seconds, result.cpu_seconds
        )
        return result

    def _power_sync_loop(self) -> None:
        while not self.stop_event.wait(self.power_sync_interval):
            try:
                self.sync_power_states()
            except RuntimeError:
                return
            except httpx.HTTPStatusError as exc:
                log.error("power states refused: %s", exc)


def start_conductors(api_url: str, token: str, names: Iterable[str], **options: Any) -> list[Conductor]:
    """Conductors in this process (tests, `kumo up`), each with its own threads and session."""
    return [Conductor(api_url, name, token, **options).start() for name in names]


def stop_conductors(conductors: Iterable[Conductor]) -> None:
    """Stop them all, in parallel (each waits up to its long poll)."""
    running = list(conductors)
    for c in running:
        c.signal_stop()
    for c in running:
        c.stop()
