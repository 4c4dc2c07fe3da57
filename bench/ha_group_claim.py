"""The claim-time HA group check: what `server_groups.lock_for_claim` (bump the group's row,
re-read its members' hosts and allocations) costs per claim on PostgreSQL as the cloud grows.

    .venv/bin/python bench/ha_group_claim.py --instances 10000 100000 --members 20

Builds a scratch database per size (hosts over 10 racks, instances spread over them, one
anti-affinity rack group holding `--members` of them), ANALYZEs it, then times `--repeat`
claims, each in its own transaction. Prints one JSON line per size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from typing import Any

import psycopg
from sqlalchemy import insert, select

from kumo.compute import hosts, server_groups
from kumo.compute.fleet_snapshot import load_snapshot
from kumo.compute.models import Instance, ServerGroup, ServerGroupMember
from kumo.db import Database
from kumo.db.migrate import upgrade
from kumo.placement.models import Allocation
from kumo.store import choice  # noqa: F401  (registers the chooser of every Database's store)

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def build(url: str, n_hosts: int, n_instances: int, members: int) -> None:
    upgrade(url)
    db = Database(url)
    with db.transaction() as s:
        provider = {}
        for i in range(n_hosts):
            host = hosts.register_host(s, f"h{i}", vcpus=64, memory_mb=262144, disk_gb=4000)
            host.rack = f"r{i % 10}"
            provider[host.name] = host.provider_id
        rules = {"failure_domain": "rack", "max_server_per_host": members}
        group = ServerGroup(
            uuid=str(uuid.uuid4()), name="g", project_id="p", user_id="u", policy="anti-affinity", rules=rules
        )
        s.add(group)
        s.flush()
        rows: list[dict[str, Any]] = []
        allocations: list[dict[str, Any]] = []
        memberships: list[dict[str, Any]] = []
        flavor = {"id": "f", "vcpus": 1, "ram": 64, "disk": 1}
        for i in range(n_instances):
            instance_uuid, host_name = str(uuid.uuid4()), f"h{i % n_hosts}"
            in_group = i < members
            rows.append(
                {
                    "uuid": instance_uuid, "project_id": "p", "user_id": "u", "name": f"i{i}",
                    "flavor": flavor, "host": host_name, "vm_state": "active", "task_state": None,
                    "vcpus": 1, "memory_mb": 64,
                    "server_group": group.uuid if in_group else None,
                }
            )  # fmt: skip
            allocations.append(
                {
                    "provider_id": provider[host_name],
                    "consumer_id": instance_uuid,
                    "resource_class": "VCPU",
                    "used": 1,
                }
            )
            if in_group:
                memberships.append({"group_uuid": group.uuid, "instance_uuid": instance_uuid})
        s.execute(insert(Instance), rows)
        s.execute(insert(Allocation), allocations)
        s.execute(insert(ServerGroupMember), memberships)
    db.dispose()


def measure(url: str, repeat: int) -> dict[str, float]:
    db = Database(url)
    with db.read() as s:
        snapshot = load_snapshot(s, 86400)
        group_uuid = s.scalar(select(ServerGroup.uuid))
    assert group_uuid is not None
    times = []
    for _ in range(repeat):
        with db.transaction() as s:
            started = time.perf_counter()
            server_groups.lock_for_claim(s, snapshot, group_uuid)
            times.append(time.perf_counter() - started)
    db.dispose()
    times.sort()
    return {"median_ms": statistics.median(times) * 1000, "p95_ms": times[int(len(times) * 0.95)] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    for n in args.instances:
        name = f"kumo_bench_ha_{n}"
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        try:
            build(url, args.hosts, n, args.members)
            with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
                conn.execute("ANALYZE")
            result = measure(url, args.repeat)
            print(json.dumps({"instances": n, "hosts": args.hosts, "members": args.members, **result}))
        finally:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name}")


if __name__ == "__main__":
    main()
