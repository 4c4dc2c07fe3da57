"""Who serves a network, and the one-pending-sync rule (kumo/network/sync.py), over real
databases: SQLite, and PostgreSQL for the concurrent burst."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from kumo.db import Database
from kumo.network import dhcp, networks, ports, sync
from kumo.network.models import Network
from kumo.schema import metadata
from kumo.work.models import Task
from tests.unit.network.test_domain import ALICE, create_port, make_net


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'net.db'}")
    metadata.create_all(database.engine)
    yield database
    database.dispose()


def syncs(db: Database, state: str = "pending") -> list[tuple[str, str]]:
    """(host, network_id) of the network_sync tasks in `state`."""
    with db.read() as session:
        rows = session.scalars(select(Task).where(Task.kind == "network_sync", Task.state == state))
        return sorted((t.host, t.payload["network_id"]) for t in rows)


def register(db: Database, host: str) -> int:
    with db.transaction() as session:
        return sync.register_agent(session, host)


def settle(db: Database, applied: int, ok: bool = True) -> None:
    """What the API does with the agent's result: the task is done, then the hooks run."""
    with db.transaction() as session:
        task = session.scalars(select(Task).where(Task.kind == "network_sync", Task.state == "pending")).one()
        task.state = "done" if ok else "failed"
        sync.HOOKS.settle(session, task, ok, {"applied_generation": applied})


def generation(db: Database, network_id: str) -> int:
    with db.read() as session:
        return session.get_one(Network, network_id).dhcp_generation


def test_without_a_network_agent_nothing_is_enqueued(db: Database) -> None:
    net = make_net(db)
    create_port(db, ALICE, net)
    assert syncs(db) == []
    with db.read() as session:
        assert dhcp.host_of(session, net) is None


def test_a_network_agent_registering_syncs_the_networks_no_one_serves(db: Database) -> None:
    net = make_net(db)
    assert register(db, "hv-net") == 1
    assert syncs(db) == [("hv-net", net)]
    with db.read() as session:
        assert dhcp.host_of(session, net) == "hv-net"
    assert register(db, "hv-net") == 0  # pending already


def test_a_burst_of_changes_leaves_one_pending_sync(db: Database) -> None:
    register(db, "hv-net")
    net = make_net(db)
    for _ in range(5):
        create_port(db, ALICE, net)
    assert syncs(db) == [("hv-net", net)]


def test_the_most_recently_registered_agent_gets_new_networks(db: Database) -> None:
    register(db, "hv-a")
    first = make_net(db)
    register(db, "hv-b")
    second = make_net(db, cidr="10.1.0.0/24")
    with db.read() as session:
        assert (dhcp.host_of(session, first), dhcp.host_of(session, second)) == ("hv-a", "hv-b")


def test_a_result_records_its_generation_and_a_stale_one_asks_again(db: Database) -> None:
    register(db, "hv-net")
    net = make_net(db)
    seen = generation(db, net)  # what the running sync read
    create_port(db, ALICE, net)  # deduplicated against the running sync
    assert syncs(db) == [("hv-net", net)]
    settle(db, seen)
    with db.read() as session:
        assert dhcp.applied_generation(session, net) == seen
    assert syncs(db) == [("hv-net", net)]  # the network moved on: the next sync is pending
    settle(db, generation(db, net))
    assert syncs(db) == []
    assert len(syncs(db, "done")) == 2


def test_a_failed_sync_records_nothing_and_the_next_change_retries(db: Database) -> None:
    register(db, "hv-net")
    net = make_net(db)
    settle(db, generation(db, net), ok=False)
    with db.read() as session:
        assert dhcp.applied_generation(session, net) == -1
    assert syncs(db) == []
    create_port(db, ALICE, net)
    assert syncs(db) == [("hv-net", net)]


def test_deleting_a_served_network_asks_its_host_to_remove_it(db: Database) -> None:
    register(db, "hv-net")
    net = make_net(db)
    settle(db, generation(db, net))
    with db.transaction() as session:
        networks.delete_network(session, ALICE, net)
    assert syncs(db) == [("hv-net", net)]
    settle(db, 99)  # the agent found it gone; nothing to record, nothing to ask again
    assert syncs(db) == []


def test_dhcp_state_carries_each_port_s_device(db: Database) -> None:
    net = make_net(db)
    create_port(db, ALICE, net, device_id="4b0d3bc2-0000-4000-8000-000000000001")
    with db.read() as session:
        (host,) = dhcp.dhcp_state(session, net)["hosts"]
    assert host["device_id"] == "4b0d3bc2-0000-4000-8000-000000000001"


def test_concurrent_changes_of_one_network_leave_one_pending_sync_on_postgresql(
    pg_database_url: str,
) -> None:
    database = Database(pg_database_url)
    metadata.create_all(database.engine)
    try:
        register(database, "hv-net")
        net = make_net(database, cidr="10.0.0.0/24")
        with database.transaction() as session:  # the subnet's own sync is settled: none pending
            task = session.scalars(select(Task).where(Task.kind == "network_sync")).one()
            task.state = "done"

        def change(i: int) -> None:
            with database.transaction() as session:
                ports.create_port(session, ALICE, {"port": {"network_id": net, "name": f"p{i}"}})

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(change, range(24)))
        assert syncs(database) == [("hv-net", net)]
        assert generation(database, net) >= 24
    finally:
        database.dispose()
