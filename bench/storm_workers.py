"""Create storm over `kumo api --workers N` on PostgreSQL, then an audit of the database.

Starts `kumo api --workers N` on a fresh PostgreSQL database (kumo.density.cloud.start_target),
registers a simulated fleet over the real agent protocol (kumo.density.simagents: one process,
every host registering and answering its spawn tasks), fires `--servers` POST /servers with
`--concurrency` in flight (the kernel spreads the connections over the workers; each worker's
scheduler takes pending servers with SELECT ... FOR UPDATE SKIP LOCKED and wakes the others
with LISTEN/NOTIFY), waits until every accepted server is ACTIVE or ERROR, and audits:

* every accepted create is exactly one instance row, and there is no other (nothing lost,
  nothing duplicated), each ACTIVE or ERROR, none left building;
* an ACTIVE server holds exactly its flavor's allocations, on the provider of its host; an
  ERROR server holds none and says why (its fault); no allocation belongs to anything else;
* on every provider, usage of each class fits (total - reserved) * allocation_ratio;
* each ACTIVE server was spawned once by the agents.

    .venv/bin/python bench/storm_workers.py --servers 2000 --workers 4 --hosts 20

With the default fleet (20 simulated hypervisors whose RAM, (262,144 - 512) MB x 1.5, holds
95 servers of 4,096 MB each: 1,900 fit) about 100 creates must end in a clean ERROR (no
valid host) while every host is full.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from kumo.density import measure
from kumo.density.cloud import Target, start_target
from kumo.density.simagents import SimAgents, SimConfig

FLAVOR = {"vcpus": 2, "ram": 4096, "disk": 20}


@dataclass
class StormOptions:
    servers: int = 2000
    workers: int = 4
    hosts: int = 20
    concurrency: int = 32
    timeout: float = 900.0
    state_dir: Path | None = None  # keep the API's state and log here


def _auth(password: str) -> dict[str, Any]:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": password}},
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }


async def _prepare(client: httpx.AsyncClient, password: str) -> tuple[str, str]:
    resp = await client.post("/identity/v3/auth/tokens", json=_auth(password))
    resp.raise_for_status()
    client.headers["X-Auth-Token"] = resp.headers["X-Subject-Token"]
    project = resp.json()["token"]["project"]["id"]
    quota = {"quota_set": {"instances": -1, "cores": -1, "ram": -1}}
    (await client.put(f"/compute/v2.1/os-quota-sets/{project}", json=quota)).raise_for_status()
    flavor = await client.post("/compute/v2.1/flavors", json={"flavor": {"name": "storm", **FLAVOR}})
    flavor.raise_for_status()
    image = await client.post(
        "/image/v2/images", json={"name": "storm", "disk_format": "raw", "container_format": "bare"}
    )
    image.raise_for_status()
    image_id = image.json()["id"]
    (
        await client.put(
            f"/image/v2/images/{image_id}/file",
            content=b"storm",
            headers={"Content-Type": "application/octet-stream"},
        )
    ).raise_for_status()
    return str(flavor.json()["flavor"]["id"]), str(image_id)


async def _storm(target: Target, sim: SimAgents, opts: StormOptions) -> dict[str, Any]:
    # Idle connections are dropped here before uvicorn's 5 s keep-alive closes them: a request
    # sent on a connection the server is closing gets no answer (httpx.ReadError).
    limits = httpx.Limits(
        max_connections=opts.concurrency + 4,
        max_keepalive_connections=opts.concurrency + 4,
        keepalive_expiry=2.0,
    )
    async with httpx.AsyncClient(base_url=target.url, timeout=300, limits=limits) as client:
        flavor, image = await _prepare(client, target.admin_password)
        sim.call("work")
        accepted: list[str] = []
        failures: list[str] = []
        uncertain: list[str] = []
        latencies: list[float] = []
        numbers = iter(range(opts.servers))

        async def worker() -> None:
            for n in numbers:
                body = {
                    "server": {
                        "name": f"storm-{n:05d}",
                        "flavorRef": flavor,
                        "imageRef": image,
                        "networks": "none",
                    }
                }
                t0 = time.perf_counter()
                try:
                    resp = await client.post("/compute/v2.1/servers", json=body)
                except httpx.TransportError as exc:
                    # No answer: the create may or may not have happened. Not retried (that
                    # could double it); the audit looks the name up instead.
                    uncertain.append(str(body["server"]["name"]))
                    failures.append(f"{type(exc).__name__} (no response)")
                    continue
                latencies.append(time.perf_counter() - t0)
                if resp.status_code == 202:
                    accepted.append(resp.json()["server"]["id"])
                else:
                    failures.append(f"{resp.status_code} {resp.text[:200]}")

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(opts.concurrency)))
        accept_seconds = time.monotonic() - started
        statuses: dict[str, int] = {}
        while time.monotonic() - started < opts.timeout:
            resp = await client.get("/compute/v2.1/servers", params={"limit": opts.servers + 10})
            resp.raise_for_status()
            ids = [s["id"] for s in resp.json()["servers"]]
            statuses = {}
            for status in await _statuses(client, ids):
                statuses[status] = statuses.get(status, 0) + 1
            if statuses.get("ACTIVE", 0) + statuses.get("ERROR", 0) >= len(accepted):
                break
            await asyncio.sleep(1.0)
        wall = time.monotonic() - started
    ordered = sorted(latencies)
    return {
        "accepted": accepted,
        "uncertain": uncertain,
        "api_failures": failures[:5],
        "api_failure_count": len(failures),
        "statuses": statuses,
        "seconds_to_accept": round(accept_seconds, 1),
        "seconds_to_settle": round(wall, 1),
        "settled_per_second": round(len(accepted) / wall, 1) if wall else None,
        "create_ms": {
            "p50": round(statistics.median(ordered) * 1000, 1),
            "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        },
    }


async def _statuses(client: httpx.AsyncClient, ids: list[str]) -> list[str]:
    resp = await client.get("/compute/v2.1/servers/detail", params={"limit": len(ids) + 10})
    resp.raise_for_status()
    return [s["status"] for s in resp.json()["servers"]]


def audit(
    database_url: str, accepted: list[str], flavor: dict[str, int], uncertain: Sequence[str] = ()
) -> dict[str, Any]:
    """What the database says after the storm (see the module docstring); `problems` lists
    every violation found, empty when the run is clean. `uncertain`: names of creates that got
    no response; each may exist at most once."""
    engine = create_engine(database_url)
    problems: list[str] = []
    want = {"VCPU": flavor["vcpus"], "MEMORY_MB": flavor["ram"], "DISK_GB": flavor["disk"]}
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT uuid, name, vm_state, task_state, host, fault FROM instances WHERE deleted = false")
        ).all()
        doubt = set(uncertain)
        created_anyway = [r.uuid for r in rows if r.name in doubt]
        accepted = [*accepted, *created_anyway]
        by_uuid = {r.uuid: r for r in rows}
        names = [r.name for r in rows]
        if len(rows) != len(accepted) or set(by_uuid) != set(accepted):
            problems.append(
                f"{len(rows)} instance rows for {len(accepted)} accepted creates "
                f"(lost {len(set(accepted) - set(by_uuid))}, unknown {len(set(by_uuid) - set(accepted))})"
            )
        if len(set(names)) != len(names):
            problems.append(f"{len(names) - len(set(names))} duplicated server names")
        allocations: dict[str, dict[str, tuple[str | None, int]]] = {}
        for consumer, rc, used, host in conn.execute(
            text(
                "SELECT a.consumer_id, a.resource_class, a.used, h.name FROM allocations a "
                "LEFT JOIN compute_hosts h ON h.provider_id = a.provider_id"
            )
        ):
            if rc in allocations.setdefault(consumer, {}):
                problems.append(f"{consumer} allocated {rc} twice")
            allocations[consumer][rc] = (host, used)
        counts = {"active": 0, "error": 0, "other": 0}
        for r in rows:
            held = allocations.get(r.uuid, {})
            if r.vm_state == "active":
                counts["active"] += 1
                expected = {rc: (r.host, amount) for rc, amount in want.items()}
                if held != expected:
                    problems.append(f"ACTIVE {r.uuid} on {r.host} holds {held}")
            elif r.vm_state == "error":
                counts["error"] += 1
                if held:
                    problems.append(f"ERROR {r.uuid} still holds {held}")
                if not r.fault:
                    problems.append(f"ERROR {r.uuid} has no fault")
            else:
                counts["other"] += 1
                problems.append(f"{r.uuid} left {r.vm_state}/{r.task_state}")
        strays = set(allocations) - set(by_uuid)
        if strays:
            problems.append(f"{len(strays)} allocation consumers are no live instance")
        over = conn.execute(
            text(
                "SELECT i.provider_id, i.resource_class, "
                "  (SELECT coalesce(sum(a.used), 0) FROM allocations a "
                "   WHERE a.provider_id = i.provider_id AND a.resource_class = i.resource_class) AS used, "
                "  (i.total - i.reserved) * i.allocation_ratio AS capacity "
                "FROM inventories i"
            )
        ).all()
        overcommitted = [r for r in over if r.used > r.capacity]
        for r in overcommitted:
            problems.append(f"provider {r.provider_id} {r.resource_class}: {r.used} used > {r.capacity}")
        spawns = conn.execute(
            text("SELECT instance_uuid, count(*) FROM tasks WHERE kind = 'spawn' GROUP BY instance_uuid")
        ).all()
        doubled = [u for u, n in spawns if n > 1]
        if doubled:
            problems.append(f"{len(doubled)} instances got more than one spawn task")
        fullest = max((r.used / r.capacity for r in over if r.capacity), default=0.0)
        # Providers that could still take one more server: with any ERROR, there must be none
        # (a no-valid-host verdict must mean the fleet was really full).
        room: dict[int, int] = {}
        for r in over:
            if r.resource_class in want:
                fits = r.used + want[r.resource_class] <= r.capacity
                room[r.provider_id] = room.get(r.provider_id, 0) + int(fits)
        with_room = sum(1 for n in room.values() if n == len(want))
        if counts["error"] and with_room:
            problems.append(f"{counts['error']} servers in ERROR while {with_room} hosts had room")
    engine.dispose()
    return {
        "instances": len(rows),
        "created_without_response": len(created_anyway),
        "active": counts["active"],
        "error": counts["error"],
        "not_settled": counts["other"],
        "providers_checked": len({r.provider_id for r in over}),
        "fullest_inventory_fraction": round(fullest, 3),
        "hosts_with_room_for_one_more": with_room,
        "spawn_tasks": sum(n for _, n in spawns),
        "problems": problems[:20],
        "problem_count": len(problems),
    }


def run_storm(opts: StormOptions) -> dict[str, Any]:
    report: dict[str, Any] = {
        "options": vars(opts),
        "machine": measure.machine(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }
    target = start_target("postgresql", workers=opts.workers, state_dir=opts.state_dir)
    sim: SimAgents | None = None
    try:
        sim = SimAgents(SimConfig(target.url, target.agent_token, opts.hosts)).start()
        report["registered"] = sim.call("register")
        result = asyncio.run(_storm(target, sim, opts))
        accepted = result.pop("accepted")
        uncertain = result.pop("uncertain")
        report["storm"] = {**result, "creates_without_response": len(uncertain)}
        report["agents"] = vars(sim.stats())
        assert target.database_url is not None
        report["audit"] = audit(target.database_url, accepted, FLAVOR, uncertain)
        if target.api_pid:
            report["api_rss_mb"] = sorted(
                round(measure.rss_bytes(pid) / 2**20, 1) for pid in measure.process_tree(target.api_pid)
            )
    finally:
        report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        if sim is not None:
            sim.stop()
        target.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--report", help="write the JSON report here too")
    parser.add_argument("--state-dir", type=Path, help="keep the API's state directory (api.log) here")
    args = parser.parse_args()
    report = run_storm(
        StormOptions(args.servers, args.workers, args.hosts, args.concurrency, state_dir=args.state_dir)
    )
    out = json.dumps(report, indent=2, default=str)
    print(out)
    if args.report:
        with open(args.report, "w") as f:
            f.write(out + "\n")
    sys.exit(0 if report["audit"]["problem_count"] == 0 else 1)


if __name__ == "__main__":
    main()
