"""Host registration and liveness: idempotent upserts, generation bumps, one-statement heartbeats."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import event, select

from kumo.compute import hosts
from kumo.compute.models import ComputeHost
from kumo.db import Database, utcnow
from kumo.errors import NotFound
from kumo.placement.models import Allocation, Inventory, ResourceProvider


def _inventory(db: Database, name: str) -> tuple[int, dict[str, tuple[int, int, float, int]]]:
    with db.transaction() as s:
        host = s.scalar(select(ComputeHost).where(ComputeHost.name == name))
        assert host is not None
        provider = s.get(ResourceProvider, host.provider_id)
        assert provider is not None and provider.uuid == host.uuid and provider.name == name
        rows = s.scalars(select(Inventory).where(Inventory.provider_id == provider.id))
        return provider.generation, {
            i.resource_class: (i.total, i.reserved, i.allocation_ratio, i.max_unit) for i in rows
        }


def test_register_creates_provider_and_inventory(db: Database) -> None:
    with db.transaction() as s:
        host = hosts.register_host(
            s,
            "h1",
            vcpus=8,
            memory_mb=16384,
            disk_gb=100,
            hypervisor_type="qemu",
            host_ip="10.0.0.5",
            cpu_allocation_ratio=4.0,
        )
        assert (host.hypervisor_type, host.host_ip, host.vcpus) == ("qemu", "10.0.0.5", 8)
    generation, inventory = _inventory(db, "h1")
    assert generation == 1
    assert inventory == {
        "VCPU": (8, 0, 4.0, 8),
        "MEMORY_MB": (16384, 512, 1.5, 16384),
        "DISK_GB": (100, 0, 1.0, 100),
    }


def test_reregistering_is_idempotent_and_bumps_generation_only_on_change(db: Database) -> None:
    for _ in range(2):
        with db.transaction() as s:
            hosts.register_host(s, "h1", vcpus=8, memory_mb=16384, disk_gb=100)
    assert _inventory(db, "h1")[0] == 1
    with db.transaction() as s:
        first = s.scalar(select(ComputeHost.uuid).where(ComputeHost.name == "h1"))
        hosts.register_host(s, "h1", vcpus=16, memory_mb=16384, disk_gb=100)
    generation, inventory = _inventory(db, "h1")
    assert generation == 2 and inventory["VCPU"][0] == 16
    with db.transaction() as s:
        assert s.scalar(select(ComputeHost.uuid).where(ComputeHost.name == "h1")) == first
        assert len(list(s.scalars(select(ComputeHost)))) == 1


def test_heartbeat_is_one_update(db: Database) -> None:
    with db.transaction() as s:
        hosts.register_host(s, "h1", vcpus=1, memory_mb=1024, disk_gb=1)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.strip().upper().startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with db.transaction() as s:
            hosts.heartbeat(s, "h1")
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("UPDATE")
    with db.transaction() as s:
        host = s.scalar(select(ComputeHost).where(ComputeHost.name == "h1"))
        assert host is not None and host.last_heartbeat is not None
        assert hosts.is_up(host, utcnow(), 30)


def test_heartbeat_of_unknown_host_is_not_found(db: Database) -> None:
    with db.transaction() as s, pytest.raises(NotFound):
        hosts.heartbeat(s, "ghost")


@pytest.mark.parametrize(
    ("age", "forced_down", "expected"),
    [(None, False, False), (5, False, True), (29, False, True), (31, False, False), (5, True, False)],
)
def test_is_up(age: int | None, forced_down: bool, expected: bool) -> None:
    now = dt.datetime(2030, 1, 1, 12, 0, 0)
    beat = None if age is None else now - dt.timedelta(seconds=age)
    host = ComputeHost(name="h", last_heartbeat=beat, forced_down=forced_down)
    assert hosts.is_up(host, now, 30) is expected


def test_a_class_the_host_has_none_of_gets_no_inventory(db: Database) -> None:
    """Placement refuses a total of 0: a host with no disk offers no DISK_GB, and so never
    enters the candidates (or the provider id range) of a request for it."""
    with db.transaction() as s:
        hosts.register_host(s, "h0", vcpus=0, memory_mb=0, disk_gb=0, reserved_memory_mb=0)
    generation, inventory = _inventory(db, "h0")
    assert inventory == {}
    with db.transaction() as s:
        hosts.register_host(s, "h0", vcpus=4, memory_mb=4096, disk_gb=10, reserved_memory_mb=0)
    grown, inventory = _inventory(db, "h0")
    assert set(inventory) == {"VCPU", "MEMORY_MB", "DISK_GB"} and grown == generation + 1
    with db.transaction() as s:
        host = s.scalar(select(ComputeHost).where(ComputeHost.name == "h0"))
        assert host is not None
        s.add(Allocation(provider_id=host.provider_id, consumer_id="vm", resource_class="VCPU", used=1))
    with db.transaction() as s:
        hosts.register_host(s, "h0", vcpus=0, memory_mb=4096, disk_gb=0, reserved_memory_mb=0)
    shrunk, inventory = _inventory(db, "h0")
    # DISK_GB goes; VCPU, still allocated to "vm", stays until its consumer goes.
    assert set(inventory) == {"VCPU", "MEMORY_MB"} and shrunk == grown + 1
