"""Day-2 actions part B through openstacksdk, unmodified, with fake-driver agents: createImage
(a new active image holding the guest's disk, with Nova's snapshot properties), shelve with
offload at once and with offload by hand (no host, no allocations), unshelve (scheduled anew,
the shelve snapshot deleted), migration lists, and the serial console's websocket proxy
(single-use, expiring tokens)."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websocket
from openstack.compute.v2.server import Server
from openstack.connection import Connection

from kumo.agent.drivers.fake import SNAPSHOT_CHUNK, SNAPSHOT_CHUNKS, FakeDriver
from kumo.compute import shelving
from kumo.db import Database, utcnow
from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.helpers import add_instance, project_id, register_hosts
from tests.functional.sdk.test_sdk import connect, wait_status

pytestmark = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedFieldWarning")
API = "/compute/v2.1"


@pytest.fixture
def conn(cloud: Cloud) -> Iterator[Connection]:
    c = connect(cloud)
    yield c
    c.close()


@pytest.fixture
def pg_conn(pg_cloud: Cloud) -> Iterator[Connection]:
    c = connect(pg_cloud)
    yield c
    c.close()


class GatedDriver(FakeDriver):
    """A fake host whose migrations wait for GATE: a live migration held in progress."""

    def migrate(
        self, instance: dict[str, Any], dest: str, live: bool, target: dict[str, Any] | None = None
    ) -> int:
        assert GATE.wait(20)
        return super().migrate(instance, dest, live, target)


GATE = threading.Event()


def _boot(conn: Connection, fleet: Fleet, prefix: str) -> Server:
    GATE.set()
    for name in (f"{prefix}-h1", f"{prefix}-h2"):
        fleet.add(name, driver=GatedDriver(name, vcpus=4, memory_mb=8192))
    flavor = conn.compute.create_flavor(name=f"{prefix}.small", vcpus=1, ram=512, disk=1)
    image = conn.image.create_image(
        f"{prefix}-base", data=b"\0" * 4096, disk_format="raw", container_format="bare", visibility="public"
    )
    server = conn.compute.create_server(
        name=f"{prefix}-vm", flavor_id=flavor.id, image_id=image.id, networks="none"
    )
    return wait_status(conn, server, "ACTIVE")


def _allocations(client: httpx.Client, consumer: str) -> dict[str, Any]:
    resp = client.get(f"/placement/allocations/{consumer}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["allocations"])


def _host(client: httpx.Client, server_id: str) -> str | None:
    resp = client.get(f"{API}/servers/{server_id}")
    assert resp.status_code == 200, resp.text
    body = resp.json()["server"]
    return body["OS-EXT-SRV-ATTR:host"]


def _snapshot(conn: Connection, cloud: Cloud, server: Server) -> None:
    image = conn.compute.create_server_image(
        server, "snap-1", metadata={"purpose": "test"}, wait=True, timeout=30
    )
    image = conn.image.get_image(image.id)
    assert image.status == "active" and image.visibility == "private"
    assert image.owner == server.project_id and image.min_disk == 1
    with cloud.client() as c:
        props = c.get(f"/image/v2/images/{image.id}").json()  # Glance's properties at top level
    assert props["image_type"] == "snapshot" and props["instance_uuid"] == server.id
    assert props["base_image_ref"] == server.image.id and props["purpose"] == "test"
    assert image.size == SNAPSHOT_CHUNKS * SNAPSHOT_CHUNK
    data = conn.image.download_image(image).content  # the guest's disk as the agent streamed it
    assert data.startswith(f"fake disk of {server.id}, chunk 0".encode())
    assert wait_status(conn, server, "ACTIVE").task_state is None
    # 2.45: the image id in the body, its URL in Location; a shelved server cannot be imaged
    with cloud.client(microversion="2.45") as c:
        resp = c.post(f"{API}/servers/{server.id}/action", json={"createImage": {"name": "snap-2"}})
        assert resp.status_code == 202, resp.text
        assert resp.headers["Location"].endswith(f"/image/v2/images/{resp.json()['image_id']}")
        bad = c.post(f"{API}/servers/{server.id}/action", json={"createImage": {"name": ""}})
        assert bad.status_code == 400
    wait_status(conn, server, "ACTIVE")
    actions = [a.action for a in conn.compute.server_actions(server)]
    assert actions.count("createImage") == 2


def _shelve_cycle(conn: Connection, cloud: Cloud, server: Server) -> None:
    """Offloaded within the shelve (shelved_offload_time 0), then unshelved elsewhere or not."""
    with cloud.client() as admin:
        conn.compute.shelve_server(server)
        wait_status(conn, server, "SHELVED_OFFLOADED")
        assert _host(admin, server.id) is None and _allocations(admin, server.id) == {}
        shelved = [i for i in conn.image.images() if i.name == f"{server.name}-shelved"]
        assert len(shelved) == 1 and shelved[0].status == "active"
        conn.compute.unshelve_server(server)
        wait_status(conn, server, "ACTIVE")
        assert _host(admin, server.id) is not None and _allocations(admin, server.id)
        # the snapshot is deleted once the server runs from it
        assert admin.get(f"/image/v2/images/{shelved[0].id}").status_code == 404
        # -1: shelved keeps its host and allocations until offloaded by hand
        cloud.settings.shelved_offload_time = -1
        conn.compute.shelve_server(server)
        wait_status(conn, server, "SHELVED")
        assert _host(admin, server.id) is not None and _allocations(admin, server.id)
        refused = admin.post(f"{API}/servers/{server.id}/action", json={"createImage": {"name": "x"}})
        assert refused.status_code == 409
        conn.compute.shelve_offload_server(server)
        wait_status(conn, server, "SHELVED_OFFLOADED")
        assert _allocations(admin, server.id) == {}
        conn.compute.unshelve_server(server)
        wait_status(conn, server, "ACTIVE")
        # above 0: offloaded once shelved that long (the API workers' loop runs offload_due)
        cloud.settings.shelved_offload_time = 60
        conn.compute.shelve_server(server)
        wait_status(conn, server, "SHELVED")
        db = Database(cloud.settings.resolved_database_url)
        try:
            with db.transaction() as session:
                assert shelving.offload_due(session, 60) == []
                later = utcnow() + dt.timedelta(seconds=61)
                assert shelving.offload_due(session, 60, now=later) == [_host(admin, server.id)]
        finally:
            db.dispose()
        wait_status(conn, server, "SHELVED_OFFLOADED")
        conn.compute.unshelve_server(server)
        wait_status(conn, server, "ACTIVE")
        names = [a.action for a in conn.compute.server_actions(server)]
        assert {"shelve", "shelveOffload", "unshelve"} <= set(names)
        # deleting an offloaded server (no host: deleted by the API) deletes its snapshot too
        cloud.settings.shelved_offload_time = 0
        conn.compute.shelve_server(server)
        wait_status(conn, server, "SHELVED_OFFLOADED")
        (snapshot,) = [i for i in conn.image.images() if i.name == f"{server.name}-shelved"]
        assert admin.delete(f"{API}/servers/{server.id}").status_code == 204
        assert admin.get(f"{API}/servers/{server.id}").status_code == 404
        assert admin.get(f"/image/v2/images/{snapshot.id}").status_code == 404


def _migrations(conn: Connection, cloud: Cloud, server: Server) -> None:
    with cloud.client(microversion="2.59") as admin:
        source = _host(admin, server.id)
        GATE.clear()
        live = {"os-migrateLive": {"host": None, "block_migration": "auto"}}
        resp = admin.post(f"{API}/servers/{server.id}/action", json=live)
        assert resp.status_code == 202, resp.text
        try:

            def under_way() -> list[dict[str, Any]]:  # preparing, then running once prepared
                found = admin.get(f"{API}/servers/{server.id}/migrations").json()["migrations"]
                return [m for m in found if m["status"] == "running"]

            (running,) = wait_for(under_way)
            assert running["server_uuid"] == server.id
            assert running["source_compute"] == source and running["memory_total_bytes"] is None
            shown = admin.get(f"{API}/servers/{server.id}/migrations/{running['id']}").json()["migration"]
            assert shown == running
            (listed_now,) = admin.get(f"{API}/os-migrations").json()["migrations"]
            assert listed_now["uuid"] == running["uuid"] and listed_now["links"][0]["href"].endswith(
                f"/servers/{server.id}/migrations/{running['id']}"
            )
        finally:
            GATE.set()
        wait_status(conn, server, "ACTIVE")
        assert _host(admin, server.id) != source
        listed = admin.get(f"{API}/os-migrations", params={"instance_uuid": server.id}).json()["migrations"]
        assert len(listed) == 1
        record = listed[0]
        assert record["migration_type"] == "live-migration" and record["status"] == "completed"
        assert record["source_compute"] == source and record["dest_compute"] == _host(admin, server.id)
        assert record["uuid"] and "user_id" not in record  # 2.80's, not at 2.59
        assert "links" not in record  # only a migration in progress links to itself
        assert admin.get(f"{API}/servers/{server.id}/migrations").json() == {"migrations": []}
        assert admin.get(f"{API}/servers/{server.id}/migrations/{record['id']}").status_code == 404
    with cloud.client(microversion="2.1") as old:
        entry = old.get(f"{API}/os-migrations").json()["migrations"][0]
        assert "migration_type" not in entry and "uuid" not in entry
        assert old.get(f"{API}/servers/{server.id}/migrations").status_code == 404
    sdk_listed = list(conn.compute.migrations())
    assert [m.status for m in sdk_listed] == ["completed"]


def _connect(url: str) -> websocket.WebSocket:
    return websocket.create_connection(url, timeout=5, subprotocols=["binary"])


def _refused(url: str) -> bool:
    try:
        _connect(url).close()
    except (websocket.WebSocketException, OSError):
        return True
    return False


def _serial_console(conn: Connection, cloud: Cloud, server: Server) -> None:
    url = conn.compute.create_console(server, console_type="serial")["url"]
    assert url.startswith("ws://") and "token=" in url
    ws = _connect(url)
    try:
        assert ws.recv() == f"kumo fake serial console of {server.id}\r\n".encode()
        ws.send_binary(b"hello console\n")
        echoed = b""
        while len(echoed) < len(b"hello console\n"):
            echoed += ws.recv()
        assert echoed == b"hello console\n"
    finally:
        ws.close()
    assert _refused(url)  # single use
    assert _refused(url.split("token=")[0] + "token=not-a-token")
    # the legacy action answers a URL too; an expired token is refused
    cloud.settings.console_token_ttl_seconds = 1
    with cloud.client() as c:
        resp = c.post(f"{API}/servers/{server.id}/action", json={"os-getSerialConsole": {"type": "serial"}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["console"]["type"] == "serial"
        time.sleep(1.2)
        assert _refused(resp.json()["console"]["url"])
        novnc = {"remote_console": {"protocol": "vnc", "type": "novnc"}}
        resp = c.post(
            f"{API}/servers/{server.id}/remote-consoles",
            json=novnc,
            headers={"OpenStack-API-Version": "compute 2.6"},
        )
        assert resp.status_code == 400


def _baremetal_refused(cloud: Cloud) -> None:
    """A node's server (its host is the node's uuid): no snapshot, shelve or serial console."""
    node = str(uuid.uuid4())
    register_hosts(cloud, node, heartbeat=False)  # down: the scheduler leaves it alone
    with cloud.client(microversion="2.5") as c:
        sid = add_instance(cloud, node, project_id(c, "admin"), name="bm")
        for body in (
            {"createImage": {"name": "bm-snap"}},
            {"shelve": None},
            {"os-getSerialConsole": {"type": "serial"}},
        ):
            resp = c.post(f"{API}/servers/{sid}/action", json=body)
            assert resp.status_code == 409 and "baremetal" in resp.text, (body, resp.text)
        assert not [i for i in c.get("/image/v2/images").json()["images"] if i["name"] == "bm-snap"]
        # 2.6 replaced os-getSerialConsole with remote-consoles: 404, as Nova
        gone = c.post(
            f"{API}/servers/{sid}/action",
            json={"os-getSerialConsole": {"type": "serial"}},
            headers={"OpenStack-API-Version": "compute 2.6"},
        )
        assert gone.status_code == 404, gone.text


def test_day2_actions_b(conn: Connection, cloud: Cloud, fleet: Fleet) -> None:
    _baremetal_refused(cloud)
    server = _boot(conn, fleet, "d2b")
    _snapshot(conn, cloud, server)
    _serial_console(conn, cloud, server)
    _migrations(conn, cloud, server)
    _shelve_cycle(conn, cloud, server)


def test_shelve_cycle_on_postgresql(pg_conn: Connection, pg_cloud: Cloud, pg_fleet: Fleet) -> None:
    server = _boot(pg_conn, pg_fleet, "d2bpg")
    # the console looks its host up by name (an integer key lookup was a 500 on PostgreSQL)
    with pg_cloud.client(microversion="2.6") as c:
        body = {"remote_console": {"protocol": "serial", "type": "serial"}}
        resp = c.post(f"{API}/servers/{server.id}/remote-consoles", json=body)
        assert resp.status_code == 200, resp.text
        assert resp.json()["remote_console"]["url"].startswith("ws://")
    _shelve_cycle(pg_conn, pg_cloud, server)
