"""Power-state sync: how long one conductor's pass over N nodes takes, and its CPU seconds.

A pass is what `Conductor.sync_power_states` runs (kumo/baremetal/conductor.py:power_sync_pass):
every owned node's power state read from its BMC on a bounded thread pool, every BMC request
under the conductor's semaphore. Three BMC setups:

  fake      the fake driver with an injected per-call latency (`--latency`, a slow BMC): what
            the concurrency bound buys, against the sequential pass as the baseline ratio
  redfish   the real Redfish driver (sushy: HTTP, JSON, resource objects) against a fast
            simulated Redfish endpoint in a child process (`--ports` BMC addresses on 127.0.0.1,
            nodes spread over them, `--latency` added per request): the conductor's CPU per pass
  emulator  the real driver against sushy-tools over libvirt domains (the lab of
            tests/integration/baremetal; needs root and libvirt), for a handful of machines

    .venv/bin/python bench/power_sync.py --mode fake --nodes 1000 10000 --latency 0.02
    .venv/bin/python bench/power_sync.py --mode redfish --nodes 1000 10000 --latency 0.002
    .venv/bin/python bench/power_sync.py --mode emulator --nodes 3

Prints one JSON line per run (median of `--repeat` passes) and a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import socket
import statistics
import sys
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import sushy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kumo.baremetal.conductor import SyncPass, power_sync_pass  # noqa: E402
from kumo.baremetal.drivers import fake as fake_driver  # noqa: E402
from kumo.baremetal.drivers.base import POWER_OFF, POWER_ON, Hardware, Node  # noqa: E402
from kumo.baremetal.drivers.load import load_hardware  # noqa: E402
from kumo.baremetal.drivers.redfish import forget_clients  # noqa: E402
from kumo.baremetal.lab import DEFAULT_IMAGE_DIR, Emulator, define_machines, remove_machine  # noqa: E402

# Ironic's mapping of sushy's power states: a transition in progress counts as where it goes.
POWER_STATES = {
    sushy.PowerState.ON: POWER_ON,
    sushy.PowerState.POWERING_ON: POWER_ON,
    sushy.PowerState.OFF: POWER_OFF,
    sushy.PowerState.POWERING_OFF: POWER_OFF,
}

# ----------------------------------------------------------------------- simulated Redfish BMCs


def _system(system_id: str) -> dict[str, Any]:
    path = f"/redfish/v1/Systems/{system_id}"
    return {
        "@odata.type": "#ComputerSystem.v1_10_0.ComputerSystem",
        "@odata.id": path,
        "Id": system_id,
        "Name": system_id,
        "PowerState": "On" if int(system_id.rsplit("-", 1)[-1]) % 3 == 0 else "Off",
        "Boot": {
            "BootSourceOverrideEnabled": "Continuous",
            "BootSourceOverrideTarget": "Hdd",
            "BootSourceOverrideTarget@Redfish.AllowableValues": ["Pxe", "Hdd", "Cd"],
        },
        "Actions": {
            "#ComputerSystem.Reset": {
                "target": f"{path}/Actions/ComputerSystem.Reset",
                "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "GracefulShutdown", "ForceRestart"],
            }
        },
    }


ROOT_DOC = {
    "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
    "@odata.id": "/redfish/v1/",
    "Id": "RootService",
    "Name": "kumo simulated BMC",
    "RedfishVersion": "1.6.0",
    "UUID": "00000000-0000-0000-0000-000000000000",
    "Systems": {"@odata.id": "/redfish/v1/Systems"},
}


async def _serve_bmcs(ports: list[int], latency: float, ready: Connection) -> None:
    requests = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                if length:
                    await reader.readexactly(length)
                if latency:
                    await asyncio.sleep(latency)
                requests += 1
                path = target.split("?", 1)[0].rstrip("/")
                if path == "/redfish/v1":
                    status, body = 200, ROOT_DOC
                elif path.startswith("/redfish/v1/Systems/") and path.count("/") == 4 and method == "GET":
                    status, body = 200, _system(path.rsplit("/", 1)[1])
                else:
                    status, body = 404, {"error": {"code": "Base.1.0.ResourceMissingAtURI", "message": path}}
                data = json.dumps(body).encode()
                writer.write(
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                    "Connection: keep-alive\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024) for port in ports]
    ready.send("ready")
    while True:
        await asyncio.sleep(0.5)
        if ready.poll():
            ready.recv()
            ready.send(requests)
            break
    for server in servers:
        server.close()
    await asyncio.sleep(0)


def _bmc_process(ports: list[int], latency: float, conn: Connection) -> None:
    asyncio.run(_serve_bmcs(ports, latency, conn))


class SimulatedBMCs:
    def __init__(self, ports: list[int], latency: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(target=_bmc_process, args=(ports, latency, child), daemon=True)

    def __enter__(self) -> SimulatedBMCs:
        self.process.start()
        if not self._conn.poll(30):
            raise RuntimeError("the simulated BMCs did not start")
        self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self.requests = int(self._conn.recv()) if self._conn.poll(10) else -1
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


# ----------------------------------------------------------------------------------- passes


class SystemObjectPower:
    """The baseline read, what Ironic's redfish power interface does: sushy's System resource
    built for each read (`get_system(id).power_state`), one sushy client kept per BMC address,
    every read under the conductor's semaphore as the driver's are. Only sushy's public API."""

    _clients: dict[str, sushy.Sushy] = {}
    _lock = threading.Lock()

    def __init__(self, system: Any, gate: threading.BoundedSemaphore) -> None:
        """`system`: the driver's power interface of the node (kumo's RedfishSystem), whose
        public address, credentials and system path are read; its reads are not used."""
        self.address = str(system.address)
        self.system_id = system.system_id
        self.username = str(system.username)
        self.password = str(system.password)
        self.verify = system.verify
        self.gate = gate

    @classmethod
    def forget_clients(cls) -> None:
        with cls._lock:
            cls._clients.clear()

    def _client(self) -> sushy.Sushy:
        with self._lock:
            client = self._clients.get(self.address)
            if client is None:
                client = self._clients[self.address] = sushy.Sushy(
                    self.address + "/redfish/v1/",
                    username=self.username or None,
                    password=self.password or None,
                    verify=self.verify,
                )
        return client

    def get_power_state(self) -> str:
        with self.gate:
            return POWER_STATES[self._client().get_system(self.system_id).power_state]


def timed_passes(
    nodes: list[Node], concurrency: int, repeat: int, system_object: bool = False
) -> list[SyncPass]:
    gate = threading.BoundedSemaphore(concurrency)
    cache: dict[str, Hardware] = {}

    def hardware(node: Node) -> Hardware:  # as the conductor: interfaces (and sessions) kept
        hw = cache.get(node.uuid)
        if hw is None:
            hw = cache[node.uuid] = load_hardware(node, gate)
            if system_object:
                power = SystemObjectPower(hw.power, gate)
                hw = cache[node.uuid] = Hardware(power, hw.management, hw.deploy)  # type: ignore[arg-type]
        return hw

    passes = []
    with ThreadPoolExecutor(concurrency) as pool:
        for _ in range(repeat):
            result = power_sync_pass(nodes, hardware, pool)
            unanswered = sum(state is None for state in result.states.values())
            if unanswered:
                raise RuntimeError(f"{unanswered} of {len(nodes)} BMCs did not answer")
            passes.append(result)
    return passes


def summary(mode: str, n: int, concurrency: int, passes: list[SyncPass], **extra: Any) -> dict[str, Any]:
    # The first pass of the redfish mode also opens the sessions; the median is the steady state.
    return {
        "mode": mode,
        "nodes": n,
        "concurrency": concurrency,
        "passes": len(passes),
        "median_seconds": round(statistics.median(p.seconds for p in passes), 3),
        "first_seconds": round(passes[0].seconds, 3),
        "median_cpu_seconds": round(statistics.median(p.cpu_seconds for p in passes), 3),
        "nodes_per_second": round(n / statistics.median(p.seconds for p in passes), 1),
        **extra,
    }


def run_fake(n: int, latency: float, concurrency: int, repeat: int, sequential_sample: int) -> dict[str, Any]:
    fake_driver.forget_all()
    nodes = [
        Node(uuid=f"fake-{i:06d}", driver="fake-hardware", driver_info={"fake_latency": latency})
        for i in range(n)
    ]
    passes = timed_passes(nodes, concurrency, repeat)
    # The baseline: the same pass one node after another, timed on a sample, per node.
    sample = nodes[: min(n, sequential_sample)]
    seq = timed_passes(sample, 1, 1)[0]
    sequential_seconds = seq.seconds / len(sample) * n
    median = statistics.median(p.seconds for p in passes)
    return summary(
        "fake",
        n,
        concurrency,
        passes,
        latency_ms=latency * 1000,
        sequential_seconds_estimated=round(sequential_seconds, 2),
        sequential_sample=len(sample),
        speedup_vs_sequential=round(sequential_seconds / median, 1),
    )


def run_redfish(
    n: int, latency: float, concurrency: int, repeat: int, ports: int, system_object: bool
) -> dict[str, Any]:
    forget_clients()
    SystemObjectPower.forget_clients()
    bmc_ports = _free_ports(ports)
    nodes = [
        Node(
            uuid=str(uuid.UUID(int=i)),
            driver="redfish",
            driver_info={
                "redfish_address": f"http://127.0.0.1:{bmc_ports[i % ports]}",
                "redfish_system_id": f"sys-{i:06d}",
                "redfish_username": "admin",
                "redfish_password": "password",
            },
        )
        for i in range(n)
    ]
    with SimulatedBMCs(bmc_ports, latency) as bmcs:
        passes = timed_passes(nodes, concurrency, repeat)
        forget_clients()
        baseline = timed_passes(nodes, concurrency, repeat, system_object=True) if system_object else []
    extra: dict[str, Any] = {}
    if baseline:
        base_cpu = statistics.median(p.cpu_seconds for p in baseline)
        extra = {
            "system_object_median_seconds": round(statistics.median(p.seconds for p in baseline), 3),
            "system_object_cpu_seconds": round(base_cpu, 3),
            "cpu_ratio_vs_system_object": round(
                statistics.median(p.cpu_seconds for p in passes) / base_cpu, 2
            ),
        }
    return summary(
        "redfish",
        n,
        concurrency,
        passes,
        latency_ms=latency * 1000,
        bmc_addresses=ports,
        bmc_requests=bmcs.requests,
        **extra,
    )


def run_emulator(n: int, concurrency: int, repeat: int) -> dict[str, Any]:
    names = [f"bench-{i + 1}" for i in range(n)]
    state = Path(tempfile.mkdtemp(prefix="kumo-bench-bmlab-"))
    machines = define_machines(names, state, DEFAULT_IMAGE_DIR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    emulator = Emulator(machines, port, state).start()
    try:
        nodes = [
            Node(uuid=m.uuid, driver="redfish", driver_info=m.driver_info(emulator.url)) for m in machines
        ]
        passes = timed_passes(nodes, concurrency, repeat)
        sequential = timed_passes(nodes, 1, repeat)
    finally:
        emulator.stop()
        for m in machines:
            remove_machine(m.domain)
    seq = statistics.median(p.seconds for p in sequential)
    return summary(
        "emulator",
        n,
        concurrency,
        passes,
        sequential_seconds=round(seq, 3),
        speedup_vs_sequential=round(seq / statistics.median(p.seconds for p in passes), 1),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("fake", "redfish", "emulator"), default="fake")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000])
    parser.add_argument(
        "--concurrency", type=int, default=16, help="BMC requests in flight (pool and semaphore)"
    )
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added to each BMC request")
    parser.add_argument("--repeat", type=int, default=3, help="passes per size (median reported)")
    parser.add_argument("--ports", type=int, default=50, help="redfish mode: BMC addresses")
    parser.add_argument(
        "--system-object",
        action="store_true",
        help="redfish mode: also time the baseline read through sushy's System object",
    )
    parser.add_argument(
        "--sequential-sample", type=int, default=200, help="fake mode: nodes timed one by one"
    )
    args = parser.parse_args(argv)
    logging_quiet()
    rows = []
    for n in args.nodes:
        if args.mode == "fake":
            row = run_fake(n, args.latency, args.concurrency, args.repeat, args.sequential_sample)
        elif args.mode == "redfish":
            row = run_redfish(n, args.latency, args.concurrency, args.repeat, args.ports, args.system_object)
        else:
            row = run_emulator(n, args.concurrency, args.repeat)
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(f"\n{'mode':9} {'nodes':>7} {'conc':>5} {'median s':>9} {'first s':>8} {'CPU s':>7} {'nodes/s':>9}")
    for r in rows:
        print(
            f"{r['mode']:9} {r['nodes']:>7} {r['concurrency']:>5} {r['median_seconds']:>9} "
            f"{r['first_seconds']:>8} {r['median_cpu_seconds']:>7} {r['nodes_per_second']:>9}"
        )
    return 0


def logging_quiet() -> None:
    logging.getLogger("sushy").setLevel(logging.ERROR)
    logging.getLogger("kumo.conductor").setLevel(logging.ERROR)
    logging.getLogger("urllib3").setLevel(logging.ERROR)


if __name__ == "__main__":
    sys.exit(main())
