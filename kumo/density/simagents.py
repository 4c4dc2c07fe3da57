"""Simulated agents for `kumo bench density`: many fake hosts served by one process, over the
real agent protocol (kumo.agent.protocol) and nothing else.

Each host registers (`POST /internal/v1/hosts`) and heartbeats (`PUT /hosts/{h}/heartbeat`)
exactly like kumo/agent/agent.py. Work is where one process cannot copy the real agent: ten
thousand hosts cannot each hold a long poll. The process long-polls once for all of them
(`POST /internal/v1/tasks/poll` with the host names and the tasks it is busy with), runs each
task through the fake driver with the real agent's `run_task`, and reports results in batches
(`POST /tasks/results`), keeping the agent's rules: a task listed again while in flight or just
reported is skipped, and nothing is written anywhere but through the API.

It runs in a child process (`SimAgents`, driven over a pipe) so that its CPU and memory are
measured apart from the API's and the benchmark driver's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import Any

import httpx

from kumo.agent.agent import run_task
from kumo.agent.drivers.fake import FakeDriver
from kumo.agent.protocol import AGENT_TOKEN_HEADER, FleetTaskList, HostReport, HostTask, TaskResult

# A hypervisor of a current two-socket server; flavors of 2 vCPU / 4 GB fit about 95 of them.
HYPERVISOR = {"vcpus": 64, "memory_mb": 262144, "disk_gb": 2000}
REPORT_BATCH = 500  # results per call, as the real agent
POLL_WAIT = 20.0


def hypervisor_name(index: int) -> str:
    return f"hv-{index:06d}"


def fleet_reports(hypervisors: int) -> list[HostReport]:
    """What each simulated hypervisor registers with. (Baremetal nodes are enrolled through the
    Ironic API by kumo.density.run, as an operator would: a node is not an agent.)"""
    return [
        HostReport(name=hypervisor_name(i), host_ip=_ip(i), **HYPERVISOR)  # type: ignore[arg-type]
        for i in range(hypervisors)
    ]


def _ip(index: int) -> str:
    return f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"


@dataclass
class FleetStats:
    registered: int = 0
    heartbeats: int = 0
    heartbeat_errors: int = 0
    polls: int = 0
    tasks_received: int = 0
    tasks_ok: int = 0
    tasks_failed: int = 0
    spawned: int = 0
    result_calls: int = 0
    retries: int = 0


class SimFleet:
    """The simulated hosts, in one asyncio loop."""

    def __init__(self, api_url: str, token: str, reports: list[HostReport], concurrency: int = 32) -> None:
        self.reports = reports
        self.names = [r.name for r in reports]
        self.concurrency = concurrency
        self.client = httpx.AsyncClient(
            base_url=api_url.rstrip("/") + "/internal/v1",
            headers={AGENT_TOKEN_HEADER: token},
            timeout=httpx.Timeout(POLL_WAIT + 40, connect=10),
            limits=httpx.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8),
        )
        self.stats = FleetStats()
        self.drivers: dict[str, FakeDriver] = {}
        self._in_flight: set[str] = set()
        self._recent: deque[str] = deque(maxlen=50_000)
        self._recent_set: set[str] = set()
        self._results: asyncio.Queue[tuple[HostTask, TaskResult]] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._reported = asyncio.Event()  # set after each batch of results is reported
        self._loops: list[asyncio.Task[None]] = []

    async def close(self) -> None:
        self._stop.set()
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        await self.client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """As Agent._call: 4xx raise, 5xx and transport errors are retried (with a bound)."""
        delay = 0.2
        for _attempt in range(30):
            try:
                resp = await self.client.request(method, path, **kwargs)
                if resp.status_code < 500:
                    resp.raise_for_status()
                    return resp
            except httpx.TransportError:
                pass
            self.stats.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise RuntimeError(f"{method} {path} kept failing")

    # -- registration and heartbeats: one call per host, as real agents ----------------------
    async def register_all(self, progress: Callable[[int], None]) -> None:
        queue: asyncio.Queue[HostReport] = asyncio.Queue()
        for report in self.reports:
            queue.put_nowait(report)

        async def worker() -> None:
            while not queue.empty():
                report = queue.get_nowait()
                await self._call("POST", "/hosts", json=report.model_dump())
                self.stats.registered += 1
                progress(self.stats.registered)

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def heartbeat_window(self, seconds: float, rate: float) -> dict[str, float]:
        """Heartbeat the hosts round-robin at `rate` per second for `seconds` (as many in flight
        as the concurrency allows); returns how many were sent and the rate achieved."""
        sent_before, errors_before = self.stats.heartbeats, self.stats.heartbeat_errors
        started = time.monotonic()
        deadline = started + seconds
        next_index = 0
        interval = 1.0 / rate if rate > 0 else seconds
        gate = asyncio.Semaphore(self.concurrency)

        async def beat(name: str) -> None:
            try:
                resp = await self.client.put(f"/hosts/{name}/heartbeat")
                if resp.status_code == 204:
                    self.stats.heartbeats += 1
                else:
                    self.stats.heartbeat_errors += 1
            except httpx.TransportError:
                self.stats.heartbeat_errors += 1
            finally:
                gate.release()

        pending: set[asyncio.Task[None]] = set()
        due = started
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            if due > now:
                await asyncio.sleep(min(due - now, deadline - now))
                continue
            await gate.acquire()  # behind schedule: the API (or this process) is saturated
            task = asyncio.create_task(beat(self.names[next_index % len(self.names)]))
            pending.add(task)
            task.add_done_callback(pending.discard)
            next_index += 1
            due += interval
        await asyncio.gather(*pending)
        wall = time.monotonic() - started
        sent = self.stats.heartbeats - sent_before
        return {
            "sent": sent,
            "errors": self.stats.heartbeat_errors - errors_before,
            "wall_seconds": wall,
            "target_rate": rate,
            "achieved_rate": sent / wall if wall else 0.0,
        }

    async def fleet_heartbeat_window(self, seconds: float, interval: float, batch: int) -> dict[str, float]:
        """Heartbeat every host once per `interval` seconds for `seconds`, as this one process
        serving them all would: `PUT /internal/v1/heartbeats` with `batch` names per call,
        the calls spread evenly over the interval."""
        sent_before, errors_before = self.stats.heartbeats, self.stats.heartbeat_errors
        chunks = [self.names[i : i + batch] for i in range(0, len(self.names), batch)]
        step = interval / len(chunks)
        started = time.monotonic()
        due = started
        calls = 0
        while due < started + seconds:
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            names = chunks[calls % len(chunks)]
            try:
                resp = await self.client.put("/heartbeats", json={"hosts": names})
                if resp.status_code == 200:
                    self.stats.heartbeats += len(names) - len(resp.json()["unknown"])
                    self.stats.heartbeat_errors += len(resp.json()["unknown"])
                else:
                    self.stats.heartbeat_errors += len(names)
            except httpx.TransportError:
                self.stats.heartbeat_errors += len(names)
            calls += 1
            due += step
        wall = time.monotonic() - started
        sent = self.stats.heartbeats - sent_before
        return {
            "sent": sent,
            "calls": calls,
            "errors": self.stats.heartbeat_errors - errors_before,
            "wall_seconds": wall,
            "target_rate": len(self.names) / interval,
            "achieved_rate": sent / wall if wall else 0.0,
        }

    async def long_poll_window(self, seconds: float, pollers: int) -> dict[str, float]:
        """`pollers` hypervisors each hold the real per-host long poll
        (`POST /hosts/{h}/tasks/poll`, as Agent._poll_loop) for `seconds`, with no work
        pending: what an idle fleet of real agents costs the API. Baremetal nodes have no agent
        of their own, so only hypervisors poll."""
        names = [n for n in self.names if n.startswith("hv-")][:pollers]
        started = time.monotonic()
        stop_at = started + seconds
        limits = httpx.Limits(max_connections=len(names) + 4, max_keepalive_connections=len(names) + 4)
        answered = failed = 0
        async with httpx.AsyncClient(
            base_url=str(self.client.base_url),
            headers=dict(self.client.headers),
            timeout=httpx.Timeout(seconds + 60, connect=10),
            limits=limits,
        ) as client:

            async def hold(name: str) -> None:
                nonlocal answered, failed
                while (remaining := stop_at - time.monotonic()) > 0.05:
                    try:
                        resp = await client.post(
                            f"/hosts/{name}/tasks/poll", json={"wait": min(POLL_WAIT, remaining), "busy": []}
                        )
                        answered += resp.status_code == 200
                        failed += resp.status_code != 200
                    except httpx.TransportError:
                        failed += 1

            await asyncio.gather(*(hold(n) for n in names))
        return {
            "pollers": len(names),
            "answered": answered,
            "failed": failed,
            "wall_seconds": time.monotonic() - started,
        }

    # -- work --------------------------------------------------------------------------------
    def start_work(self) -> None:
        self._loops.append(asyncio.create_task(self._poll_loop()))
        self._loops += [asyncio.create_task(self._report_loop()) for _ in range(2)]

    async def _poll_loop(self) -> None:
        while not self._stop.is_set():
            body = {"hosts": self.names, "wait": POLL_WAIT, "busy": sorted(self._in_flight)}
            resp = await self._call("POST", "/tasks/poll", json=body)
            self.stats.polls += 1
            for task in FleetTaskList.model_validate(resp.json()).tasks:
                if task.id in self._in_flight or task.id in self._recent_set:
                    continue
                self._in_flight.add(task.id)
                self.stats.tasks_received += 1
                driver = self.drivers.get(task.host)
                if driver is None:
                    driver = self.drivers[task.host] = FakeDriver(task.host, **HYPERVISOR)
                result = run_task(driver, task)  # the fake driver answers at once
                self._results.put_nowait((task, result))

    async def _report_loop(self) -> None:
        while not self._stop.is_set():
            batch = [await self._results.get()]
            while len(batch) < REPORT_BATCH and not self._results.empty():
                batch.append(self._results.get_nowait())
            body = {"results": [{"task_id": t.id, **r.model_dump()} for t, r in batch]}
            await self._call("POST", "/tasks/results", json=body)
            self.stats.result_calls += 1
            for task, result in batch:
                self._in_flight.discard(task.id)
                if len(self._recent) == self._recent.maxlen:
                    self._recent_set.discard(self._recent[0])
                self._recent.append(task.id)
                self._recent_set.add(task.id)
                if result.ok:
                    self.stats.tasks_ok += 1
                    self.stats.spawned += task.kind == "spawn"
                else:
                    self.stats.tasks_failed += 1
            self._reported.set()

    async def wait_spawned(self, expected: int, timeout: float) -> int:
        """Until `expected` spawns are reported (or `timeout` seconds): how many there are. The
        benchmark waits on this instead of polling the counts, which would load the machine
        it measures."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.stats.spawned < expected:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            self._reported.clear()
            try:
                await asyncio.wait_for(self._reported.wait(), remaining)
            except TimeoutError:
                break
        return self.stats.spawned


# ---------------------------------------------------------------------------- child process


@dataclass(frozen=True)
class SimConfig:
    api_url: str
    token: str
    hypervisors: int
    concurrency: int = 32


def _serve(conn: Connection, config: SimConfig) -> None:
    asyncio.run(_serve_async(conn, config))


async def _serve_async(conn: Connection, config: SimConfig) -> None:
    fleet = SimFleet(config.api_url, config.token, fleet_reports(config.hypervisors), config.concurrency)
    last_progress = 0.0

    def progress(done: int) -> None:
        nonlocal last_progress
        now = time.monotonic()
        if now - last_progress > 0.2 or done == len(fleet.reports):
            last_progress = now
            conn.send(("progress", done))

    try:
        while True:
            command, args = await asyncio.to_thread(conn.recv)
            try:
                if command == "register":
                    await fleet.register_all(progress)
                    conn.send(("done", fleet.stats.registered))
                elif command == "heartbeat":
                    conn.send(("done", await fleet.heartbeat_window(*args)))
                elif command == "fleet_heartbeat":
                    conn.send(("done", await fleet.fleet_heartbeat_window(*args)))
                elif command == "long_polls":
                    conn.send(("done", await fleet.long_poll_window(*args)))
                elif command == "work":
                    fleet.start_work()
                    conn.send(("done", None))
                elif command == "wait_spawned":
                    conn.send(("done", await fleet.wait_spawned(*args)))
                elif command == "stats":
                    conn.send(("done", asdict(fleet.stats)))
                elif command == "stop":
                    break
                else:
                    conn.send(("error", f"unknown command {command}"))
            except Exception as exc:  # report to the driver, which stops the run
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        await fleet.close()
        conn.send(("done", None))


class SimAgents:
    """The simulated fleet's process, driven from the benchmark."""

    def __init__(self, config: SimConfig) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, config), name="kumo-simagents", daemon=True
        )

    def start(self) -> SimAgents:
        self.process.start()
        return self

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def call(self, command: str, *args: Any, progress: Callable[[int], None] | None = None) -> Any:
        self._conn.send((command, args))
        while True:
            if not self._conn.poll(1.0):
                if not self.process.is_alive():
                    raise RuntimeError("the simulated agents' process died")
                continue
            kind, value = self._conn.recv()
            if kind == "progress":
                if progress is not None:
                    progress(int(value))
            elif kind == "error":
                raise RuntimeError(f"simulated agents: {value}")
            else:
                return value

    def stats(self) -> FleetStats:
        return FleetStats(**self.call("stats"))

    def stop(self) -> None:
        """Ask the process to close its connections; kill it when busy (mid-registration)."""
        if self.process.is_alive():
            try:
                self._conn.send(("stop", ()))
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and self._conn.poll(max(0.0, deadline - time.monotonic())):
                    if self._conn.recv()[0] == "done":
                        break
            except (OSError, EOFError):
                pass
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
