"""`kumo bench density`: Yahoo's density test before production. A simulated fleet joins the
cloud the way real hosts do, servers are booted through the compute API, and the report says
what the fleet costs the control plane and whether the LINE-size targets are met
(kumo.density.figures). The cloud is reached only through its HTTP APIs and its /metrics
pages; its processes are started as an operator starts them (kumo.density.cloud).

1. Start `kumo api` on a fresh database (or use `--api-url`).
2. Start the simulated agents (kumo.density.simagents, a process of its own): every hypervisor
   registers through `POST /internal/v1/hosts`. Baremetal nodes are enrolled the way an
   operator does it, through the Ironic API (`POST /baremetal/v1/nodes`, driver fake-hardware,
   left in enroll: each a host and a resource provider with one reserved unit of
   CUSTOM_BAREMETAL_DENSITY), and kept up by one conductor heartbeat
   (`PUT /internal/v1/conductors/{name}`), which is how kumo's conductors report their nodes.
3. Heartbeat cost: API CPU over an idle window, then over a window of heartbeats at the fleet's
   rate (hosts / interval); the difference per heartbeat, projected onto the whole fleet.
4. Boot the instances through `POST /compute/v2.1/servers` (admin, unlimited quota; with
   --per-request N, Nova's multi-create: min_count = max_count = N) in checkpoints; after
   each, the scheduler's own histograms over that checkpoint (`kumo_schedule_seconds`: the
   filters and weighers; `kumo_claim_seconds`: the claim; `kumo_schedule_claim_seconds`: per
   instance, its share of its pass's read plus its committed claim), the hosts the cloud
   counts up (`kumo_hosts`), create latency, throughput, memory, database size. Then the
   probe: --probe servers created one at a time, each waited for, so that each is a scheduling
   pass of its own: their `kumo_schedule_claim_seconds` is the schedule + claim latency a lone
   request sees with the fleet at that size.
5. `GET /compute/v2.1/servers/detail?limit=1000` latency at the first checkpoint and with the
   full fleet (the ratio is the baseline).

Invariants: every figure of a checkpoint covers that checkpoint only (histograms and counters
are differences of scrapes, summed over every API worker and scheduler process); nothing is
written to the cloud except through its APIs; every process and database the run started is
gone when it returns, unless `keep`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kumo import promtext
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.density import cloud, figures, measure
from kumo.density.cloud import Target
from kumo.density.simagents import HYPERVISOR, SimAgents, SimConfig

T = TypeVar("T")
MICROVERSION = "compute 2.64"
FLAVOR = {"vcpus": 2, "ram": 4096, "disk": 20}
HISTOGRAMS = ("kumo_schedule_seconds", "kumo_claim_seconds", "kumo_schedule_claim_seconds")
IRONIC_VERSION = "1.65"
BAREMETAL_CLASS = "baremetal-density"
CONDUCTOR = "density-conductor"
COUNTERS = ("kumo_claim_conflicts_total", "kumo_no_valid_host_total")
# A probe asks the simulated agents to wait for its spawn this long before it creates the server,
# time enough for their process to take the request (a pipe and a thread hop away).
PROBE_ARM_SECONDS = 0.05


@dataclass
class DensityOptions:
    hypervisors: int = 1000
    baremetal: int = 0
    instances: int = 5000
    database: str = "sqlite"  # or "postgresql"
    workers: int = 1
    # PostgreSQL: schedule in this many `kumo scheduler` processes, not in the API workers.
    scheduler_processes: int = 0
    api_url: str | None = None
    # With --api-url: how to log in and reach the agents' API; optionally what to measure.
    admin_password: str | None = None
    agent_token: str | None = None
    api_pid: int | None = None
    database_url: str | None = None
    concurrency: int = 16  # concurrent server creates
    per_request: int = 1  # servers per create (Nova multi-create: min_count = max_count)
    probe: int = 20  # lone servers created one at a time after each checkpoint (0: none)
    # VACUUM ANALYZE at each checkpoint, before its list and probe (PostgreSQL, a database this
    # run created): what autovacuum does as tables grow, at a known point of the run.
    vacuum: bool = True
    agent_concurrency: int = 32  # concurrent registrations / heartbeats
    checkpoints: int = 10
    list_calls: int = 20
    heartbeat_interval: float = 10.0  # kumo agent's default
    heartbeat_window: float = 15.0
    long_polls: int = 300  # real per-host long polls held in the idle-fleet window (0: skip)
    boot_timeout: float = 1800.0  # per checkpoint
    state_dir: Path | None = None
    keep: bool = False
    report: Path | None = None
    progress: bool = True


# ---------------------------------------------------------------------------- the run


class DensityRun:
    """One density run: start (or reach) the cloud and the simulated fleet, run the phases in
    order, each adding its section to `report`, and stop whatever it started."""

    def __init__(self, opts: DensityOptions, console: Console) -> None:
        self.opts = opts
        self.console = console
        self.target: Target | None = None
        self.sim: SimAgents | None = None
        self.report: dict[str, Any] = {}
        self._scrape = (0.0, 0)
        self._answered = 0
        self._pages: dict[float, tuple[dict[str, promtext.Histogram], dict[str, float]]] = {}
        self._hosts = {"up": 0, "down": 0}  # hosts the cloud counts, as of the latest scrape
        self._probed = 0  # probe servers so far (ACTIVE on top of the checkpoints' servers)
        self._refused = 0  # servers whose create was refused, every checkpoint so far

    # -- helpers ---------------------------------------------------------------------------
    def api_pids(self) -> list[int]:
        """The control plane's processes: the API's, and the scheduler processes if any."""
        if not self.target or not self.target.api_pid:
            return []
        pids = measure.process_tree(self.target.api_pid)
        for scheduler in self.target.scheduler_pids:
            pids += measure.process_tree(scheduler)
        return pids

    def api_rss(self) -> dict[str, Any]:
        pids = measure.process_tree(self.target.api_pid) if self.target and self.target.api_pid else []
        sizes = {pid: measure.rss_bytes(pid) for pid in pids}
        master = self.target.api_pid if self.target else None
        # With --workers N uvicorn's master only supervises: the workers are what serves.
        workers = [s for pid, s in sizes.items() if pid != master or len(pids) == 1]
        return {
            "processes": len(pids),
            "worker_max_mb": figures.mb(max(workers)) if workers else None,
            "total_mb": figures.mb(sum(sizes.values())) if sizes else None,
        }

    async def _metrics(
        self, client: httpx.AsyncClient
    ) -> tuple[dict[str, promtext.Histogram], dict[str, float]]:
        """The scheduler's histograms and counters summed over the API's workers. Each worker
        keeps its own registry and the kernel picks who answers: with several workers, scrape on
        fresh connections until each (told apart by its pid) has answered, and keep each
        worker's latest page, so one that does not answer this time adds its figures late
        rather than never."""
        answered: set[float] = set()
        deadline = time.monotonic() + 30
        while True:
            async with httpx.AsyncClient(base_url=str(client.base_url), timeout=120) as fresh:
                t0 = time.perf_counter()
                text = (await fresh.get("/metrics")).text
                self._scrape = (time.perf_counter() - t0, len(text))
            self._hosts = {
                state: int(promtext.total(text, "kumo_hosts", state=state)) for state in ("up", "down")
            }
            started = (
                promtext.value(text, "kumo_api_worker_pid")
                or promtext.value(text, "process_start_time_seconds")
                or 0.0
            )
            self._pages[started] = (
                promtext.histograms(text, HISTOGRAMS),
                {name: promtext.value(text, name) or 0.0 for name in COUNTERS},
            )
            answered.add(started)
            if len(answered) >= max(1, self.opts.workers) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        for url in self.target.scheduler_metrics if self.target else []:
            async with httpx.AsyncClient(timeout=60) as fresh:
                text = (await fresh.get(url)).text
            self._pages[promtext.value(text, "kumo_api_worker_pid") or 0.0] = (
                promtext.histograms(text, HISTOGRAMS),
                {name: promtext.value(text, name) or 0.0 for name in COUNTERS},
            )
        self._answered = len(answered)
        total = {name: promtext.Histogram(()) for name in HISTOGRAMS}
        for histograms, _ in self._pages.values():
            for name in HISTOGRAMS:
                total[name] = total[name] + histograms[name]
        return total, {name: sum(c[name] for _, c in self._pages.values()) for name in COUNTERS}

    def _in_thread(self, fn: Callable[[], T], progress: Progress, label: str, seconds: float) -> T:
        """Run a blocking call while a bar counts its expected seconds."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:
                box["error"] = exc

        bar = progress.add_task(label, total=seconds)
        thread = threading.Thread(target=run, daemon=True)
        started = time.monotonic()
        thread.start()
        while thread.is_alive():
            thread.join(0.2)
            progress.update(bar, completed=min(seconds, time.monotonic() - started))
        progress.update(bar, completed=seconds)
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    # -- phases ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        opts = self.opts
        started = time.monotonic()
        self.report = {
            "command": " ".join(["kumo", *sys.argv[1:]]) if sys.argv[1:3] == ["bench", "density"] else None,
            "machine": measure.machine(),
            "options": {
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in vars(opts).items()
                if k not in ("admin_password", "agent_token")
            },
        }
        progress = Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            disable=not opts.progress,
        )
        try:
            with progress:
                bar = progress.add_task("start kumo api", total=1)
                self.target = self._target()
                progress.update(bar, completed=1)
                self.sim = SimAgents(
                    SimConfig(
                        self.target.url, self.target.agent_token, opts.hypervisors, opts.agent_concurrency
                    )
                ).start()
                self._register(progress)
                self._heartbeats(progress)
                self._long_polls(progress)
                asyncio.run(self._boot(progress))
            self.report["database"] = {
                "kind": "sqlite" if (self.target.database_url or "").startswith("sqlite") else opts.database,
                "size_mb": figures.mb(cloud.database_size(self.target.database_url)),
            }
            self.report["memory"] = {
                "api": self.api_rss(),
                "agents_process_mb": figures.mb(measure.rss_bytes(self.sim.pid)),
                "hosts_per_agents_process": opts.hypervisors,
            }
            fleet = {
                "hypervisors": opts.hypervisors,
                "baremetal": opts.baremetal,
                "instances": opts.instances,
            }
            self.report["targets"] = figures.verdict(self.report, fleet)
            self.report["total_seconds"] = round(time.monotonic() - started, 1)
        finally:
            if self.sim is not None:
                self.sim.stop()
            if self.target is not None:
                self.target.close()
        if opts.report is not None:
            opts.report.write_text(json.dumps(self.report, indent=2) + "\n")
        return self.report

    def _register(self, progress: Progress) -> None:
        assert self.sim is not None
        bar = progress.add_task("register hypervisors (agent protocol)", total=self.opts.hypervisors)
        meter = measure.CpuMeter(self.api_pids()).start()
        started = time.monotonic()
        registered = self.sim.call("register", progress=lambda n: progress.update(bar, completed=n))
        wall = time.monotonic() - started
        self.report["register"] = {
            "hosts": registered,
            "hypervisors": self.opts.hypervisors,
            "baremetal": self.opts.baremetal,
            "seconds": round(wall, 2),
            "per_second": round(registered / wall, 1) if wall else None,
            "api_cpu_ms_per_host": figures.ms(meter.stop() / registered)
            if registered and meter.pids
            else None,
        }
        if self.opts.baremetal:
            asyncio.run(self._enrol_baremetal(progress))
        self.report["analyze_seconds"] = self._analyze()

    def _analyze(self, statement: str = "ANALYZE") -> float | None:
        """ANALYZE a database this run created, once the fleet is in: the statistics a DBA's
        autovacuum would gather in its own time, without which the planner plans the
        candidates query on an empty-table guess; with "VACUUM ANALYZE" at each checkpoint,
        also the visibility map that index-only scans need. Never done on --api-url's
        database. Returns the seconds it took (None: not done)."""
        if self.opts.api_url or self.target is None:
            return None
        return cloud.analyze(self.target.database_url, statement)

    def _target(self) -> Target:
        opts = self.opts
        if opts.api_url:
            return cloud.existing_target(
                opts.api_url, opts.admin_password, opts.agent_token, opts.database_url, opts.api_pid
            )
        return cloud.start_target(
            opts.database, opts.workers, opts.scheduler_processes, opts.state_dir, opts.keep
        )

    async def _enrol_baremetal(self, progress: Progress) -> None:
        """Every node through the Ironic API, then one conductor heartbeat that keeps them up."""
        assert self.target is not None
        count = self.opts.baremetal
        bar = progress.add_task("enrol baremetal (Ironic API)", total=count)
        headers = {"X-OpenStack-Ironic-API-Version": IRONIC_VERSION}
        limits = httpx.Limits(max_connections=self.opts.agent_concurrency + 2)
        async with httpx.AsyncClient(
            base_url=self.target.url, headers=headers, timeout=300, limits=limits
        ) as client:
            await self._login(client)
            numbers = iter(range(count))
            errors: list[str] = []
            meter = measure.CpuMeter(self.api_pids()).start()
            started = time.monotonic()

            async def worker() -> None:
                for number in numbers:
                    body = {
                        "name": f"bm-{number:06d}",
                        "driver": "fake-hardware",
                        "resource_class": BAREMETAL_CLASS,
                        "properties": {"cpus": 64, "memory_mb": 262_144, "local_gb": 1_000},
                    }
                    resp = await client.post("/baremetal/v1/nodes", json=body)
                    if resp.status_code != 201:
                        errors.append(f"{resp.status_code} {resp.text[:200]}")
                    progress.advance(bar)

            await asyncio.gather(*(worker() for _ in range(self.opts.agent_concurrency)))
            wall = time.monotonic() - started
            cpu = meter.stop()
            # The conductor's first heartbeat takes its whole assignment; later ones send back the
            # version they hold (as kumo conductor does) and, nothing having changed, are answered
            # "unchanged" without nodes. The API's CPU of each kind is measured apart.
            held: str | None = None
            owned = 0
            first_cpu, first_ms = 0.0, 0.0
            beats: list[float] = []
            beat_cpu = 0.0
            unchanged = 0
            for number in range(4):
                meter.start()
                t0 = time.perf_counter()
                resp = await client.put(
                    f"/internal/v1/conductors/{CONDUCTOR}",
                    json={"assignment": held} if held else {},
                    headers={AGENT_TOKEN_HEADER: self.target.agent_token},
                )
                resp.raise_for_status()
                elapsed, used = time.perf_counter() - t0, meter.stop()
                answer = resp.json()
                if answer.get("nodes") is not None:
                    owned = len(answer["nodes"])
                unchanged += bool(answer.get("unchanged"))
                held = answer.get("assignment")
                if number == 0:
                    first_cpu, first_ms = used, elapsed
                else:
                    beats.append(elapsed)
                    beat_cpu += used
            beat_cpu /= len(beats)
        self.report["baremetal"] = {
            "enrolled": count - len(errors),
            "errors": len(errors),
            "error_samples": errors[:3],
            "seconds": round(wall, 2),
            "per_second": round(count / wall, 1) if wall else None,
            "api_cpu_ms_per_node": figures.ms(cpu / count) if meter.pids else None,
            "conductor_heartbeat": {
                "nodes_owned": owned,
                "first_ms": round(first_ms * 1000, 1),
                "first_api_cpu_ms": figures.ms(first_cpu) if meter.pids else None,
                "unchanged_answers": unchanged,
                "ms": figures.latency(beats, 50),
                "api_cpu_ms_per_call": figures.ms(beat_cpu) if meter.pids else None,
                "api_pct_of_core_at_interval": (
                    round(beat_cpu / self.opts.heartbeat_interval * 100, 2) if meter.pids else None
                ),
            },
        }

    def _heartbeats(self, progress: Progress) -> None:
        """API CPU with the fleet quiet, then with it heartbeating at hosts/interval per second."""
        assert self.sim is not None
        sim = self.sim
        opts = self.opts
        window = opts.heartbeat_window
        rate = opts.hypervisors / opts.heartbeat_interval
        pg = (self.target.database_url or "").startswith("postgresql") if self.target else False
        api = measure.CpuMeter(self.api_pids())
        database = (self.target.database_url or "").rsplit("/", 1)[-1] if self.target else ""
        db = measure.CpuMeter(measure.postgres_pids(database) if pg else [])
        api.start(), db.start()
        idle_started = time.monotonic()
        self._in_thread(lambda: time.sleep(window), progress, "idle window (baseline CPU)", window)
        idle_wall = time.monotonic() - idle_started
        idle_api, idle_db = api.stop() / idle_wall, db.stop() / idle_wall
        self._idle_api_rate = idle_api
        self.report["heartbeats"] = self._heartbeat_cost(
            api,
            db,
            (idle_api, idle_db),
            lambda: sim.call("heartbeat", window, rate),
            progress,
            "heartbeat window (one call each)",
        )
        batch = 1000
        batched = self._heartbeat_cost(
            api,
            db,
            (idle_api, idle_db),
            lambda: sim.call("fleet_heartbeat", window, opts.heartbeat_interval, batch),
            progress,
            "heartbeat window (batched)",
        )
        self.report["heartbeats_batched"] = {"batch": batch, **batched}

    def _heartbeat_cost(
        self,
        api: measure.CpuMeter,
        db: measure.CpuMeter,
        idle: tuple[float, float],
        send: Callable[[], dict[str, float]],
        progress: Progress,
        label: str,
    ) -> dict[str, Any]:
        """API (and PostgreSQL) CPU above the idle rate while `send` heartbeats the fleet."""
        opts = self.opts
        window = opts.heartbeat_window
        hosts = opts.hypervisors  # baremetal nodes: their conductor's heartbeat (_enrol_baremetal)
        rate = hosts / opts.heartbeat_interval
        idle_api, idle_db = idle
        api.start(), db.start()
        result = self._in_thread(send, progress, label, window)
        wall = result["wall_seconds"]
        api_cpu, db_cpu = api.stop(), db.stop()
        sent = int(result["sent"])
        extra_api = max(0.0, api_cpu - idle_api * wall)
        extra_db = max(0.0, db_cpu - idle_db * wall)
        per_beat = (extra_api / sent) if sent else None
        per_beat_db = (extra_db / sent) if sent and db.pids else None
        projected = rate * per_beat * 100 if per_beat is not None else None
        projected_db = rate * per_beat_db * 100 if per_beat_db is not None else None
        return {
            "hosts": hosts,
            "interval_seconds": opts.heartbeat_interval,
            "fleet_rate_per_second": round(rate, 1),
            "window_seconds": round(wall, 2),
            "sent": sent,
            "errors": int(result["errors"]),
            "achieved_rate_per_second": round(result["achieved_rate"], 1),
            "saturated": result["achieved_rate"] < 0.95 * rate,
            "api_idle_pct_of_core": round(idle_api * 100, 2) if api.pids else None,
            "api_pct_of_core_measured": round(extra_api / wall * 100, 2) if api.pids else None,
            "api_cpu_ms_per_heartbeat": figures.ms(per_beat) if api.pids else None,
            "database_cpu_ms_per_heartbeat": figures.ms(per_beat_db),
            "api_pct_of_core_projected_fleet": round(projected, 1) if projected is not None else None,
            "database_pct_of_core_projected_fleet": (
                round(projected_db, 1) if projected_db is not None else None
            ),
            "calls": int(result.get("calls", sent)),
            "hosts_within_10pct_of_core": (
                int(0.10 / per_beat * opts.heartbeat_interval) if per_beat else None
            ),
        }

    def _long_polls(self, progress: Progress) -> None:
        """Real agents each hold a long poll. `long_polls` hypervisors hold theirs for a window
        with nothing to do: API CPU per waiting agent, projected onto every hypervisor, and the
        latency of an ordinary compute request meanwhile (against the same request before)."""
        assert self.sim is not None and self.target is not None
        sim = self.sim
        pollers = min(self.opts.long_polls, self.opts.hypervisors)
        if pollers <= 0:
            return
        window = self.opts.heartbeat_window
        token = self._sync_token()
        url = self.target.url
        during: list[float] = []
        stop = threading.Event()

        def probe(samples: list[float], calls: int | None) -> None:
            with httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=120) as c:
                while not stop.is_set() and (calls is None or len(samples) < calls):
                    t0 = time.perf_counter()
                    c.get("/compute/v2.1/flavors").raise_for_status()
                    samples.append(time.perf_counter() - t0)
                    stop.wait(0.25)

        quiet: list[float] = []
        probe([], 2)  # warm-up: connection, token cache
        probe(quiet, 10)
        api = measure.CpuMeter(self.api_pids()).start()

        def probe_during() -> None:
            time.sleep(1.0)  # once the polls are all waiting
            probe(during, None)

        prober = threading.Thread(target=probe_during, daemon=True)
        prober.start()
        result = self._in_thread(
            lambda: sim.call("long_polls", window, pollers), progress, f"{pollers} idle long polls", window
        )
        stop.set()
        prober.join(timeout=130)
        wall = result["wall_seconds"]
        extra = max(0.0, api.stop() - getattr(self, "_idle_api_rate", 0.0) * wall)
        per_agent = extra / wall / pollers if api.pids else None
        self.report["long_polls"] = {
            "pollers": pollers,
            "window_seconds": round(wall, 2),
            "answered": int(result["answered"]),
            "failed": int(result["failed"]),
            "api_pct_of_core_measured": round(extra / wall * 100, 2) if api.pids else None,
            "api_pct_of_core_per_agent": round(per_agent * 100, 4) if per_agent is not None else None,
            "api_pct_of_core_projected_hypervisors": (
                round(per_agent * 100 * self.opts.hypervisors, 1) if per_agent is not None else None
            ),
            "get_flavors_quiet_ms": figures.latency(quiet, 50, 95),
            "get_flavors_during_ms": {
                **figures.latency(during, 50, 95),
                "max": figures.ms(max(during) if during else None),
            },
        }

    def _sync_token(self) -> str:
        assert self.target is not None
        resp = httpx.post(f"{self.target.url}/identity/v3/auth/tokens", json=self._auth_body(), timeout=60)
        resp.raise_for_status()
        return resp.headers["X-Subject-Token"]

    def _auth_body(self) -> dict[str, Any]:
        assert self.target is not None
        return {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": "admin",
                            "domain": {"id": "default"},
                            "password": self.target.admin_password,
                        }
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
            }
        }

    async def _login(self, client: httpx.AsyncClient) -> str:
        resp = await client.post("/identity/v3/auth/tokens", json=self._auth_body())
        resp.raise_for_status()
        client.headers["X-Auth-Token"] = resp.headers["X-Subject-Token"]
        return str(resp.json()["token"]["project"]["id"])

    async def _prepare(self, client: httpx.AsyncClient) -> tuple[str, str]:
        project = await self._login(client)
        quota = {"quota_set": {"instances": -1, "cores": -1, "ram": -1}}
        (await client.put(f"/compute/v2.1/os-quota-sets/{project}", json=quota)).raise_for_status()
        tag = uuid.uuid4().hex[:6]
        flavor = await client.post(
            "/compute/v2.1/flavors", json={"flavor": {"name": f"density-{tag}", **FLAVOR}}
        )
        flavor.raise_for_status()
        image = await client.post(
            "/image/v2/images",
            json={"name": f"density-{tag}", "disk_format": "raw", "container_format": "bare"},
        )
        image.raise_for_status()
        image_id = image.json()["id"]
        upload = await client.put(
            f"/image/v2/images/{image_id}/file",
            content=b"density",
            headers={"Content-Type": "application/octet-stream"},
        )
        upload.raise_for_status()
        return str(flavor.json()["flavor"]["id"]), str(image_id)

    async def _list_latency(self, client: httpx.AsyncClient, calls: int) -> dict[str, Any]:
        samples, returned = [], 0
        for _ in range(calls):
            t0 = time.perf_counter()
            resp = await client.get("/compute/v2.1/servers/detail", params={"limit": 1000})
            samples.append(time.perf_counter() - t0)
            resp.raise_for_status()
            returned = len(resp.json()["servers"])
        return {**figures.latency(samples, 50, 95), "servers_per_page": returned}

    async def _errors(self, client: httpx.AsyncClient) -> int:
        resp = await client.get("/compute/v2.1/servers", params={"status": "ERROR", "limit": 1000})
        resp.raise_for_status()
        return len(resp.json()["servers"])

    async def _boot(self, progress: Progress) -> None:
        assert self.sim is not None and self.target is not None
        sim = self.sim
        opts = self.opts
        limits = httpx.Limits(
            max_connections=opts.concurrency + 4, max_keepalive_connections=opts.concurrency + 4
        )
        async with httpx.AsyncClient(
            base_url=self.target.url,
            headers={"OpenStack-API-Version": MICROVERSION},
            timeout=300,
            limits=limits,
        ) as client:
            flavor, image = await self._prepare(client)
            sim.call("work")
            created_bar = progress.add_task("create servers (compute API)", total=opts.instances)
            active_bar = progress.add_task("servers ACTIVE", total=opts.instances)
            steps = max(1, min(opts.checkpoints, opts.instances))
            bounds = [round(opts.instances * (i + 1) / steps) for i in range(steps)]
            checkpoints: list[dict[str, Any]] = []
            self.report["checkpoints"] = checkpoints
            before, counted = await self._metrics(client)
            created = 0
            api_meter = measure.CpuMeter(self.api_pids())
            for index, bound in enumerate(bounds):
                api_meter.start()
                t0 = time.monotonic()
                latencies, failures = await self._create(
                    client, flavor, image, created, bound, lambda: progress.advance(created_bar)
                )
                created = bound
                self._refused += len(failures)
                accepted = time.monotonic() - t0
                errors = await self._wait_active(
                    client, created - self._refused + self._probed, progress, active_bar
                )
                wall = time.monotonic() - t0
                api_cpu = api_meter.stop() if api_meter.pids else None
                after, counts = await self._metrics(client)
                schedule = after["kumo_schedule_seconds"] - before["kumo_schedule_seconds"]
                claim = after["kumo_claim_seconds"] - before["kumo_claim_seconds"]
                share = after["kumo_schedule_claim_seconds"] - before["kumo_schedule_claim_seconds"]
                conflicts = counts["kumo_claim_conflicts_total"] - counted["kumo_claim_conflicts_total"]
                no_valid_host = counts["kumo_no_valid_host_total"] - counted["kumo_no_valid_host_total"]
                before, counted = after, counts
                stats = sim.stats()
                segment = bound - (bounds[index - 1] if index else 0)
                point: dict[str, Any] = {
                    "instances": created,
                    "active": stats.spawned - self._probed,
                    "error": errors,
                    "create_failures": len(failures),
                    "create_failure_samples": failures[:3],
                    "segment": segment,
                    "seconds_to_accept": round(accepted, 2),
                    "seconds_to_active": round(wall, 2),
                    "active_per_second": round(segment / wall, 1) if wall else None,
                    "create_ms": figures.latency(latencies, 50, 99),
                    "schedule": figures.histogram_summary(schedule),
                    "claim": figures.histogram_summary(claim),
                    "schedule_plus_claim": figures.sum_bound(schedule, claim),
                    # Per instance of the storm's passes: its share of the read + its claim.
                    "schedule_claim_per_instance": figures.histogram_summary(share),
                    "claim_conflicts": int(conflicts),
                    "metrics_scrape": {
                        "ms": figures.ms(self._scrape[0]),
                        "kb": self._scrape[1] // 1024,
                        "workers_answered": self._answered,
                    },
                    "no_valid_host": int(no_valid_host),
                    "hosts": dict(self._hosts),
                    "api_cpu_seconds_per_instance": round(api_cpu / segment, 4) if api_cpu else None,
                    "api_rss": self.api_rss(),
                    "scheduler_rss_mb": [
                        figures.mb(measure.rss_bytes(pid)) for pid in self.target.scheduler_pids
                    ],
                    "agents_rss_mb": figures.mb(measure.rss_bytes(sim.pid)),
                    "database_mb": figures.mb(cloud.database_size(self.target.database_url)),
                }
                if opts.vacuum:
                    point["vacuum_seconds"] = await asyncio.to_thread(self._analyze, "VACUUM ANALYZE")
                if index == 0 or index == len(bounds) - 1:
                    calls = opts.list_calls if index == len(bounds) - 1 else max(5, opts.list_calls // 2)
                    point["list_detail_limit_1000_ms"] = await self._list_latency(client, calls)
                if opts.probe:
                    point["probe"] = await self._probe(client, flavor, image)
                    before, counted = await self._metrics(client)  # the next storm starts here
                checkpoints.append(point)
                if opts.progress:
                    self.console.log(figures.checkpoint_line(point))
            self.report["agents"] = vars(sim.stats())

    async def _create(
        self,
        client: httpx.AsyncClient,
        flavor: str,
        image: str,
        start: int,
        stop: int,
        advance: Callable[[], None],
    ) -> tuple[list[float], list[str]]:
        """Servers start..stop, `per_request` to a create (the last one may hold fewer); a
        refused create counts one failure per server it asked for."""
        latencies: list[float] = []
        failures: list[str] = []
        step = max(1, self.opts.per_request)
        firsts = iter(range(start, stop, step))

        async def worker() -> None:
            for first in firsts:
                count = min(step, stop - first)
                server: dict[str, Any] = {
                    "name": f"density-{first:06d}",
                    "flavorRef": flavor,
                    "imageRef": image,
                    "networks": "none",
                }
                if count > 1:
                    server.update(min_count=count, max_count=count)
                t0 = time.perf_counter()
                resp = await client.post("/compute/v2.1/servers", json={"server": server})
                latencies.append(time.perf_counter() - t0)
                if resp.status_code != 202:
                    failures.extend([f"{resp.status_code} {resp.text[:200]}"] * count)
                for _ in range(count):
                    advance()

        await asyncio.gather(*(worker() for _ in range(self.opts.concurrency)))
        return latencies, failures

    async def _probe(self, client: httpx.AsyncClient, flavor: str, image: str) -> dict[str, Any]:
        """Lone requests: `probe` servers created one at a time, each waited for until ACTIVE, so
        each is a scheduling pass of one; `kumo_schedule_claim_seconds` over them is the
        schedule + claim latency a request sees with the fleet at this size."""
        assert self.sim is not None
        before, _ = await self._metrics(client)
        latencies: list[float] = []
        failures: list[str] = []
        for _ in range(self.opts.probe):
            expected = self.sim.stats().spawned + 1
            body = {
                "server": {
                    "name": f"probe-{self._probed:06d}",
                    "flavorRef": flavor,
                    "imageRef": image,
                    "networks": "none",
                }
            }
            # Blocks in the simulated agents' process until they report the spawn: polling its
            # counts every few ms would load the cores the lone request is measured on. Asked
            # before the request goes out, so that neither this process's call nor the agents'
            # process taking it runs beside the scheduling pass being measured.
            spawned = asyncio.create_task(asyncio.to_thread(self.sim.call, "wait_spawned", expected, 60.0))
            await asyncio.sleep(PROBE_ARM_SECONDS)
            t0 = time.perf_counter()
            resp = await client.post("/compute/v2.1/servers", json=body)
            if resp.status_code != 202:
                failures.append(f"{resp.status_code} {resp.text[:200]}")
                await spawned  # no spawn comes: the agents' process answers after the 60 s
                continue
            self._probed += 1
            if await spawned < expected:
                raise RuntimeError("a probe server did not become ACTIVE within 60 s")
            latencies.append(time.perf_counter() - t0)
        after, _ = await self._metrics(client)
        lone = after["kumo_schedule_claim_seconds"] - before["kumo_schedule_claim_seconds"]
        return {
            "servers": len(latencies),
            "create_failures": failures[:3],
            "create_to_active_ms": figures.latency(latencies, 50, 99),
            "schedule_claim": figures.histogram_summary(lone),
        }

    async def _wait_active(
        self, client: httpx.AsyncClient, expected: int, progress: Progress, bar: Any
    ) -> int:
        """Until every accepted server is ACTIVE (spawned by the simulated agents) or ERROR."""
        assert self.sim is not None
        deadline = time.monotonic() + self.opts.boot_timeout
        errors, last_error_check = 0, 0.0
        while True:
            spawned = self.sim.stats().spawned
            progress.update(bar, completed=spawned)
            if time.monotonic() - last_error_check > 2.0 or spawned + errors >= expected:
                errors = await self._errors(client)
                last_error_check = time.monotonic()
            if spawned + errors >= expected:
                return errors
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {spawned} of {expected} servers ACTIVE ({errors} ERROR) in time")
            await asyncio.sleep(0.25)


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the cleanups: API, agents, database


def run_density(opts: DensityOptions, console: Console | None = None) -> dict[str, Any]:
    """Run the density test of `opts` and return its report (also written to `opts.report`).
    A SIGTERM while it runs unwinds through the cleanups, so nothing it started outlives it."""
    console = console or Console(stderr=True)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        result = DensityRun(opts, console).run()
    finally:
        if previous is not None:  # a caller's process (pytest, say) gets its own handler back
            signal.signal(signal.SIGTERM, previous)
    if opts.progress:
        console.print(figures.summary_table(result))
    return result


__all__ = ["HYPERVISOR", "DensityOptions", "run_density"]
