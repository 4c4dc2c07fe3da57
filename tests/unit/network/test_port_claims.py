"""A port named by two server creates at once is claimed by one of them (PostgreSQL, where
the creates really run side by side)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from kumo.db import Database
from kumo.network import ports, servers
from kumo.network.errors import PortInUse
from kumo.network.models import Port
from kumo.network.servers import RequestedNetwork
from kumo.schema import metadata
from tests.unit.network.test_domain import ALICE, make_net


def test_two_servers_claiming_one_port_at_once_one_wins_on_postgresql(pg_database_url: str) -> None:
    """The port is re-read under its network's lock: never claimed twice, the loser gets 409."""
    database = Database(pg_database_url)
    metadata.create_all(database.engine)
    try:
        net = make_net(database, cidr="10.0.0.0/24")
        with database.transaction() as session:
            port_id = ports.create_port(session, ALICE, {"port": {"network_id": net}}).id
        start = threading.Barrier(2)

        def claim(server: str) -> str:
            start.wait()
            try:
                with database.transaction() as session:
                    servers.allocate_for_server(
                        session, ALICE, server, [RequestedNetwork(port_id=port_id)], project_id="p-alice"
                    )
                return "claimed"
            except PortInUse:
                return "in use"

        with ThreadPoolExecutor(2) as pool:
            outcomes = sorted(pool.map(claim, ["srv-a", "srv-b"]))
        assert outcomes == ["claimed", "in use"]
        with database.read() as session:
            assert session.get_one(Port, port_id).device_id in ("srv-a", "srv-b")
    finally:
        database.dispose()
