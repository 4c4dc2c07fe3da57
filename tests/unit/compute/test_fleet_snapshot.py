from __future__ import annotations

import datetime as dt

from sqlalchemy import delete

from kumo.compute.fleet_snapshot import hosts_of_instances, load_snapshot
from kumo.db import Database, utcnow
from kumo.placement.models import Inventory
from tests.unit.placement.fleet import add_aggregate, add_host, add_instance, allocate, recorded_statements


def test_capacity_usage_and_generation(db: Database) -> None:
    with db.transaction() as s:
        provider = add_host(s, "h1", {"VCPU": 10, "MEMORY_MB": 4096}, ratio=1.5, reserved=2, max_unit=4)
        provider.generation = 7
        allocate(s, provider, "c1", {"VCPU": 2, "MEMORY_MB": 1024})
        allocate(s, provider, "c2", {"VCPU": 3})
        add_host(s, "h2")
    with db.transaction() as s:
        snapshot = load_snapshot(s)
    h1 = snapshot.hosts["h1"]
    assert (h1.provider_id, h1.generation) == (provider.id, 7)
    assert h1.capacity == {"VCPU": 12, "MEMORY_MB": 6141}  # int((total - reserved) * ratio)
    assert h1.used == {"VCPU": 5, "MEMORY_MB": 1024}
    assert h1.max_unit == {"VCPU": 4, "MEMORY_MB": 4}
    assert snapshot.hosts["h2"].used == {}
    assert list(snapshot.hosts) == ["h1", "h2"]


def test_liveness_from_heartbeat_forced_down_and_disabled(db: Database) -> None:
    now = utcnow()
    with db.transaction() as s:
        add_host(s, "fresh", last_heartbeat=now - dt.timedelta(seconds=29))
        add_host(s, "stale", last_heartbeat=now - dt.timedelta(seconds=31))
        add_host(s, "never", last_heartbeat=None)
        add_host(s, "forced", forced_down=True)
        add_host(s, "disabled", disabled=True)
    with db.transaction() as s:
        snapshot = load_snapshot(s, heartbeat_timeout=30, now=now)
    assert {h.name: (h.up, h.enabled) for h in snapshot.hosts.values()} == {
        "fresh": (True, True),
        "stale": (False, True),
        "never": (False, True),
        "forced": (False, True),
        "disabled": (True, False),
    }


def test_availability_zone_and_aggregates(db: Database) -> None:
    with db.transaction() as s:
        for name in ("h1", "h2", "h3"):
            add_host(s, name)
        add_aggregate(s, "ssd", ["h1", "h3"], {"ssd": "true"})
        add_aggregate(s, "zone", ["h1"], {"availability_zone": "az1"})
    with db.transaction() as s:
        hosts = load_snapshot(s).hosts
    assert {n: h.availability_zone for n, h in hosts.items()} == {"h1": "az1", "h2": "nova", "h3": "nova"}
    assert hosts["h1"].aggregates == ({"ssd": "true"}, {"availability_zone": "az1"})
    assert hosts["h2"].aggregates == ()


def test_server_group_members_count_live_placed_instances(db: Database) -> None:
    with db.transaction() as s:
        add_host(s, "h1")
        add_host(s, "h2")
        add_instance(s, "a", "h1", server_group="g1")
        add_instance(s, "b", "h1", server_group="g1")
        add_instance(s, "c", "h2", server_group="g1")
        add_instance(s, "d", "h2", server_group="g1", deleted=True)
        add_instance(s, "e", None, server_group="g1")  # still scheduling
        add_instance(s, "f", "h2")  # in no group
    with db.transaction() as s:
        snapshot = load_snapshot(s, instance_uuids=["a", "d", "e", "zz"])
    assert snapshot.group_hosts == {"g1": {"h1": 2, "h2": 1}}
    assert snapshot.instance_hosts == {"a": "h1"}


def test_hosts_of_instances(db: Database) -> None:
    with db.transaction() as s:
        add_instance(s, "a", "h1")
        add_instance(s, "b", "h2")
        add_instance(s, "gone", "h1", deleted=True)
    with db.transaction() as s:
        assert hosts_of_instances(s, ["a", "b", "gone", "unknown"]) == {"a": "h1", "b": "h2"}
        assert hosts_of_instances(s, []) == {}


def test_query_count_does_not_grow_with_the_fleet(db: Database) -> None:
    def statements_to_load(hosts: int) -> int:
        with db.transaction() as s:
            for n in range(hosts):
                name = f"n{hosts}-{n}"
                provider = add_host(s, name)
                allocate(s, provider, f"c-{name}", {"VCPU": 1})
                add_aggregate(s, f"agg-{name}", [name], {"k": "v"})
                add_instance(s, f"i-{name}", name, server_group="g1")
        with recorded_statements(db) as statements, db.transaction() as s:
            load_snapshot(s, instance_uuids=["i-x"])
        return len(statements)

    assert statements_to_load(2) == statements_to_load(20) <= 7  # BEGIN on SQLite + 6 queries


def test_a_part_of_the_fleet_reads_those_hosts_alike(db: Database) -> None:
    with db.transaction() as s:
        providers = {name: add_host(s, name) for name in ("h1", "h2", "h3")}
        allocate(s, providers["h1"], "c1", {"VCPU": 2})
        allocate(s, providers["h2"], "c2", {"VCPU": 3})
        add_aggregate(s, "a", ["h1", "h2", "h3"], {"availability_zone": "az1"})
        add_instance(s, "i1", "h1", server_group="g1")
    with db.transaction() as s:
        whole = load_snapshot(s)
        part = load_snapshot(s, provider_ids=[providers["h1"].id], host_names=["h3"], group_uuids=())
        none = load_snapshot(s, provider_ids=[])
    assert list(part.hosts) == ["h1", "h3"] and list(none.hosts) == []
    assert all(part.hosts[name] == whole.hosts[name] for name in part.hosts)
    assert part.group_hosts == {} and whole.group_hosts == {"g1": {"h1": 1}}


def test_a_part_of_the_fleet_is_one_statement_with_the_whole_fleets_private_stock(db: Database) -> None:
    """The scheduler's sample in one statement: hosts, inventories and usage, their aggregates
    (in aggregate order), and the private stock (which is the whole fleet's, not the part's)."""
    with db.transaction() as s:
        providers = {name: add_host(s, name) for name in ("h1", "h2")}
        empty = add_host(s, "empty")
        s.execute(delete(Inventory).where(Inventory.provider_id == empty.id))  # no inventory yet
        allocate(s, providers["h1"], "c1", {"VCPU": 2, "MEMORY_MB": 512})
        add_aggregate(s, "zone", ["h1"], {"availability_zone": "az1"})
        add_aggregate(s, "stock", ["h2"], {"baremetal": "true", "filter_tenant_id": "p9"})
        add_aggregate(s, "rack", ["h1"], {"rack": "r1"})
    with db.transaction() as s:
        whole = load_snapshot(s, stock_exclusive=True)
        ids = [providers["h1"].id, whole.hosts["empty"].provider_id]
        with recorded_statements(db) as statements:
            part = load_snapshot(s, provider_ids=ids, stock_exclusive=True, group_uuids=())
    assert len(statements) == 1
    assert list(part.hosts) == ["empty", "h1"]
    assert [dict(m) for m in part.hosts["h1"].aggregates] == [{"availability_zone": "az1"}, {"rack": "r1"}]
    assert all(part.hosts[name] == whole.hosts[name] for name in part.hosts)
    assert part.hosts["h1"].availability_zone == "az1" and part.hosts["h1"].used == {
        "VCPU": 2,
        "MEMORY_MB": 512,
    }
    assert part.hosts["empty"].capacity == {} and part.hosts["empty"].used == {}
    assert part.private_stock == whole.private_stock == frozenset({("p9", "*")})
