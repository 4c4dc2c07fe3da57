"""openstacksdk, unmodified, against a real kumo: flavors, images and the server lifecycle with
in-process fake-driver agents, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import openstack
import pytest
from openstack import exceptions
from openstack.compute.v2.server import Server
from openstack.connection import Connection

from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, Cloud, Fleet

pytestmark = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedFieldWarning")

IMAGE_DATA = b"\x00" * 8192 + b"kumo-sdk"


def connect(
    cloud: Cloud, user: str = "admin", password: str = ADMIN_PASSWORD, project: str = "admin"
) -> Connection:
    return openstack.connect(
        auth_url=f"{cloud.url}/identity",
        username=user,
        password=password,
        project_name=project,
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=cloud.settings.region,
        identity_api_version="3",
    )


def wait_status(conn: Connection, server: Server, status: str) -> Server:
    """Wait from a fresh read: wait_for_server returns at once if the object it is given is
    already (stale) in `status`."""
    fresh = conn.compute.get_server(server.id)
    return conn.compute.wait_for_server(fresh, status=status, interval=0.1, wait=30)


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


def _lifecycle(conn: Connection, fleet: Fleet) -> None:
    fleet.add("sdk-host1", vcpus=4, memory_mb=8192)
    fleet.add("sdk-host2", vcpus=4, memory_mb=8192)

    flavor = conn.compute.create_flavor(name="sdk.small", vcpus=1, ram=512, disk=1)
    assert (flavor.vcpus, flavor.ram, flavor.disk) == (1, 512, 1)
    found = conn.compute.find_flavor("sdk.small")
    assert found is not None and found.id == flavor.id

    image = conn.image.create_image(
        "sdk-image",
        data=IMAGE_DATA,
        disk_format="raw",
        container_format="bare",
        visibility="public",
    )
    image = conn.image.get_image(image.id)
    assert image.status == "active"
    assert image.size == len(IMAGE_DATA) and image.checksum == hashlib.md5(IMAGE_DATA).hexdigest()

    server = conn.compute.create_server(
        name="sdk-vm",
        flavor_id=flavor.id,
        image_id=image.id,
        networks="none",
        metadata={"owner": "sdk"},
    )
    assert server.id and server.admin_password
    server = wait_status(conn, server, "ACTIVE")
    assert server.status == "ACTIVE" and server.power_state == 1
    assert server.compute_host in ("sdk-host1", "sdk-host2")
    assert server.flavor.original_name == "sdk.small" and server.flavor.vcpus == 1
    assert server.image.id == image.id
    assert server.metadata == {"owner": "sdk"}

    listed = list(conn.compute.servers())
    assert [(s.id, s.name, s.status) for s in listed] == [(server.id, "sdk-vm", "ACTIVE")]
    assert [s.id for s in conn.compute.servers(details=False)] == [server.id]
    assert [s.id for s in conn.compute.servers(status="SHUTOFF")] == []

    conn.compute.stop_server(server)
    stopped = wait_status(conn, server, "SHUTOFF")
    assert stopped.power_state == 4 and stopped.vm_state == "stopped"
    # Rebuilding a stopped server leaves it stopped (the CLI's `rebuild --wait` waits for SHUTOFF).
    conn.compute.rebuild_server(server, image=image.id, name="sdk-vm2")
    rebuilt = wait_status(conn, server, "SHUTOFF")
    assert rebuilt.name == "sdk-vm2" and rebuilt.power_state == 4 and rebuilt.task_state is None
    history = [a.action for a in conn.compute.server_actions(server)]
    assert history[:2] == ["rebuild", "stop"]
    conn.compute.start_server(server)
    started = wait_status(conn, server, "ACTIVE")
    assert started.power_state == 1 and started.task_state is None

    # The owner's usage shows up in the project's absolute limits.
    limits = conn.compute.get_limits().absolute
    assert limits.instances_used == 1 and limits.total_cores_used == 1 and limits.total_ram_used == 512

    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, interval=0.1, wait=30)
    with pytest.raises(exceptions.NotFoundException):
        conn.compute.get_server(server.id)
    assert list(conn.compute.servers()) == []
    hypervisors = list(conn.compute.hypervisors(details=True))
    assert sorted(h.name for h in hypervisors) == ["sdk-host1", "sdk-host2"]
    # The SDK reads hypervisors at 2.88, which dropped the usage fields: they are asked at 2.87.
    assert all(h.vcpus_used is None for h in hypervisors)
    usage = conn.compute.get("/os-hypervisors/detail", microversion="2.87").json()["hypervisors"]
    assert [h["vcpus_used"] for h in usage] == [0, 0]


def test_server_lifecycle_sqlite(conn: Connection, fleet: Fleet) -> None:
    _lifecycle(conn, fleet)


@pytest.mark.postgres
def test_server_lifecycle_postgres(pg_conn: Connection, pg_fleet: Fleet) -> None:
    _lifecycle(pg_conn, pg_fleet)


def test_member_sees_only_own_servers(cloud: Cloud, conn: Connection, fleet: Fleet) -> None:
    fleet.add("sdk-host1", vcpus=4, memory_mb=8192)
    flavor = conn.compute.create_flavor(name="sdk.tiny", vcpus=1, ram=256, disk=1)
    image = conn.image.create_image(
        "shared",
        data=IMAGE_DATA,
        disk_format="raw",
        container_format="bare",
        visibility="public",
    )
    demo = connect(cloud, "demo", DEMO_PASSWORD, "demo")
    try:
        mine = demo.compute.create_server(
            name="demo-vm", flavor_id=flavor.id, image_id=image.id, networks="auto"
        )
        wait_status(demo, mine, "ACTIVE")
        theirs = conn.compute.create_server(
            name="admin-vm", flavor_id=flavor.id, image_id=image.id, networks="auto"
        )
        wait_status(conn, theirs, "ACTIVE")

        assert [s.name for s in demo.compute.servers()] == ["demo-vm"]
        with pytest.raises(exceptions.NotFoundException):
            demo.compute.get_server(theirs.id)
        everyone = {s.name for s in conn.compute.servers(all_projects=True)}
        assert everyone == {"demo-vm", "admin-vm"}
        # Members may not move servers around.
        with pytest.raises(exceptions.ForbiddenException):
            demo.compute.live_migrate_server(mine, host="sdk-host1", block_migration="auto")
    finally:
        demo.close()


def _image_members(cloud: Cloud, conn: Connection) -> None:
    """openstacksdk's image members: the owner (admin's project) shares, demo accepts; a
    Glance error reaches the SDK as its message."""
    image = conn.image.create_image(name="shared-sdk", disk_format="raw", container_format="bare")
    image = conn.image.update_image(image, visibility="shared")
    demo_project = conn.identity.find_project("demo").id
    member = conn.image.add_member(image, member=demo_project)
    assert (member.member_id, member.status) == (demo_project, "pending")
    demo = connect(cloud, "demo", DEMO_PASSWORD, "demo")
    try:
        assert [i.id for i in demo.image.images()] == []
        demo.image.update_member(member, image, status="accepted")
        assert [i.id for i in demo.image.images()] == [image.id]
        assert conn.image.get_member(demo_project, image).status == "accepted"
        with pytest.raises(exceptions.ForbiddenException) as refused:
            demo.image.add_member(image, member="someone")
        assert "You are not permitted to add members" in str(refused.value.details)
    finally:
        demo.close()
    assert [m.member_id for m in conn.image.members(image)] == [demo_project]
    conn.image.remove_member(member, image)
    assert list(conn.image.members(image)) == []
    with pytest.raises(exceptions.NotFoundException) as missing:
        conn.image.get_member(demo_project, image)
    assert f"is not a member of image {image.id}" in str(missing.value.details)


def test_image_members(cloud: Cloud, conn: Connection) -> None:
    _image_members(cloud, conn)


@pytest.mark.postgres
def test_image_members_on_postgres(pg_cloud: Cloud, pg_conn: Connection) -> None:
    _image_members(pg_cloud, pg_conn)
