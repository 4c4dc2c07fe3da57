"""createBackup through openstacksdk and the API with fake-driver agents: a backup is a snapshot
image with image_type backup and its backup_type, the backups of a type beyond `rotation` are
deleted once a new one is uploaded (oldest first, other types untouched; 0 keeps none), the
2.45 body and the older Location header, Nova's body checks; and createImage, createBackup and
shelve of paused and suspended servers (Nova allows them from ACTIVE, SHUTOFF, PAUSED and
SUSPENDED)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openstack.connection import Connection

from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.helpers import API, BACKENDS, demo_token
from tests.functional.helpers import make_flavor, upload_image
from tests.functional.sdk.test_sdk import connect, wait_status

pytestmark = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedFieldWarning")


@pytest.fixture
def conn(cloud: Cloud) -> Iterator[Connection]:
    c = connect(cloud)
    yield c
    c.close()


@pytest.fixture(params=BACKENDS)
def any_backend(request: pytest.FixtureRequest) -> tuple[Cloud, Fleet]:
    """The conftest's SQLite cloud and fleet, or its PostgreSQL ones."""
    prefix = "pg_" if request.param == "postgresql" else ""
    return request.getfixturevalue(f"{prefix}cloud"), request.getfixturevalue(f"{prefix}fleet")


@pytest.fixture
def any_conn(any_backend: tuple[Cloud, Fleet]) -> Iterator[Connection]:
    c = connect(any_backend[0])
    yield c
    c.close()


def _boot(conn: Connection, fleet: Fleet, name: str = "bk") -> Any:
    fleet.add(f"{name}-h1")
    flavor = conn.compute.create_flavor(name=f"{name}.small", vcpus=1, ram=512, disk=1)
    image = conn.image.create_image(
        f"{name}-base", data=b"\0" * 4096, disk_format="raw", container_format="bare", visibility="public"
    )
    server = conn.compute.create_server(
        name=f"{name}-vm", flavor_id=flavor.id, image_id=image.id, networks="none"
    )
    return wait_status(conn, server, "ACTIVE")


def _idle(c: httpx.Client, sid: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        server = dict(c.get(f"{API}/servers/{sid}").json()["server"])
        return server if server["OS-EXT-STS:task_state"] is None else None

    return dict(wait_for(done))


def _backup(c: httpx.Client, sid: str, name: str, kind: str, rotation: Any) -> httpx.Response:
    body = {"createBackup": {"name": name, "backup_type": kind, "rotation": rotation}}
    return c.post(f"{API}/servers/{sid}/action", json=body)


def _status(c: httpx.Client, image_id: str) -> str | None:
    resp = c.get(f"/image/v2/images/{image_id}")
    return None if resp.status_code == 404 else str(resp.json()["status"])


def test_backups_rotate(any_backend: tuple[Cloud, Fleet], any_conn: Connection) -> None:
    """On SQLite and PostgreSQL: the rotation reads the images' JSON properties."""
    (cloud, fleet), conn = any_backend, any_conn
    server = _boot(conn, fleet)
    sid = server.id
    with cloud.client() as c:
        # before 2.45: 202, the image's compute URL in Location, no body
        first = _backup(c, sid, "daily-1", "daily", 2)
        assert first.status_code == 202 and first.content == b"", first.text
        daily_1 = first.headers["Location"].rsplit("/", 1)[1]
        assert first.headers["Location"].endswith(f"/compute/v2.1/images/{daily_1}")
        _idle(c, sid)
        image = c.get(f"/image/v2/images/{daily_1}").json()
        assert image["status"] == "active" and image["name"] == "daily-1"
        assert (image["image_type"], image["backup_type"], image["instance_uuid"]) == ("backup", "daily", sid)
        assert image["visibility"] == "private" and image["owner"] == server.project_id

    # openstacksdk's backup (what `openstack server backup create` calls)
    conn.compute.backup_server(server, "daily-2", "daily", 2)
    with cloud.client(microversion="2.45") as c:
        _idle(c, sid)
        daily_2 = [i.id for i in conn.image.images() if i.name == "daily-2"][0]
        weekly = _backup(c, sid, "weekly-1", "weekly", "1")  # a string of digits, as Nova's schema
        assert weekly.status_code == 202 and "Location" not in weekly.headers, weekly.text
        weekly_1 = weekly.json()["image_id"]
        _idle(c, sid)
        third = _backup(c, sid, "daily-3", "daily", 2)
        assert third.status_code == 202, third.text
        daily_3 = third.json()["image_id"]
        _idle(c, sid)
        # the oldest daily went; the weekly one (another type) stayed
        assert _status(c, daily_1) is None
        assert [_status(c, i) for i in (daily_2, daily_3, weekly_1)] == ["active"] * 3
        # rotation 0 keeps none of the type, the new one included (Nova's _rotate_backups)
        none_kept = _backup(c, sid, "weekly-2", "weekly", 0)
        assert none_kept.status_code == 202, none_kept.text
        _idle(c, sid)
        assert _status(c, weekly_1) is None and _status(c, none_kept.json()["image_id"]) is None
        assert [_status(c, i) for i in (daily_2, daily_3)] == ["active"] * 2
    with cloud.client() as c:
        unlocated = _backup(c, sid, "weekly-3", "weekly", 0)
        assert unlocated.status_code == 202 and "Location" not in unlocated.headers  # rotation 0
        _idle(c, sid)
        actions = c.get(f"{API}/servers/{sid}/os-instance-actions").json()["instanceActions"]
        backups = [a for a in actions if a["action"] == "createBackup"]
        assert len(backups) == 6
        detail = c.get(f"{API}/servers/{sid}/os-instance-actions/{backups[0]['request_id']}").json()
        events = detail["instanceAction"]["events"]
        assert [(e["event"], e["result"]) for e in events] == [("compute_backup_instance", "Success")]


@pytest.mark.parametrize(
    "body",
    [
        {"backup_type": "daily", "rotation": 1},
        {"name": "b", "rotation": 1},
        {"name": "b", "backup_type": "daily"},
        {"name": "b", "backup_type": "daily", "rotation": -1},
        {"name": "b", "backup_type": "daily", "rotation": "one"},
        {"name": "b", "backup_type": "daily", "rotation": 1.5},
        {"name": "b", "backup_type": "daily", "rotation": True},
        {"name": "b", "backup_type": 7, "rotation": 1},
        {"name": "", "backup_type": "daily", "rotation": 1},
        {"name": " b", "backup_type": "daily", "rotation": 1},
        {"name": "b", "backup_type": "daily", "rotation": 1, "extra": 1},
        {"name": "b", "backup_type": "daily", "rotation": 1, "metadata": {"k": 1}},
        "backup",
    ],
)
def test_bad_backup_bodies_are_400(cloud: Cloud, body: Any) -> None:
    with cloud.client() as c:
        resp = c.post(
            f"{API}/servers/00000000-0000-0000-0000-000000000000/action", json={"createBackup": body}
        )
        assert resp.status_code == 400, resp.text
        assert "badRequest" in resp.json()


def _fake_backup(c: httpx.Client, name: str, sid: str) -> str:
    """An image of the caller's project posing as a daily backup of server `sid`."""
    body = {
        "name": name,
        "disk_format": "raw",
        "container_format": "bare",
        "image_type": "backup",
        "backup_type": "daily",
        "instance_uuid": sid,
    }
    resp = c.post("/image/v2/images", json=body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def test_rotation_leaves_other_projects_images_alone(conn: Connection, cloud: Cloud, fleet: Fleet) -> None:
    """Another project's images with the server's backup properties neither count toward the
    rotation nor are deleted by it (Nova lists and deletes with the requester's context)."""
    server = _boot(conn, fleet, "rot")
    sid = server.id
    with cloud.client(microversion="2.45") as c, cloud.client(token=demo_token(cloud)) as stranger:
        older_fake = _fake_backup(stranger, "fake-old", sid)
        first = _backup(c, sid, "daily-1", "daily", 2)
        assert first.status_code == 202, first.text
        daily_1 = first.json()["image_id"]
        _idle(c, sid)
        newer_fake = _fake_backup(stranger, "fake-new", sid)  # would push daily-1 out if it counted
        second = _backup(c, sid, "daily-2", "daily", 2)
        assert second.status_code == 202, second.text
        daily_2 = second.json()["image_id"]
        _idle(c, sid)
        assert [_status(c, i) for i in (daily_1, daily_2)] == ["active"] * 2
        assert [_status(stranger, i) for i in (older_fake, newer_fake)] == ["queued"] * 2
        # the third pushes out the oldest of the server's own only
        third = _backup(c, sid, "daily-3", "daily", 2)
        _idle(c, sid)
        assert _status(c, daily_1) is None
        assert [_status(c, i) for i in (daily_2, third.json()["image_id"])] == ["active"] * 2
        assert [_status(stranger, i) for i in (older_fake, newer_fake)] == ["queued"] * 2


def test_a_locked_server_is_imaged_and_backed_up_by_its_owner(cloud: Cloud, fleet: Fleet) -> None:
    """Nova checks no lock in snapshot() and backup() (NOTE(melwitt): a lock is meant to
    prevent accidental change or delete): the non-admin owner of a locked server may
    createImage and createBackup it; other actions stay refused."""
    fleet.add("lk-h1")
    with cloud.client() as admin:
        flavor = make_flavor(admin, "lk.small")
        image = upload_image(admin)
    with cloud.client(token=demo_token(cloud), microversion="2.45") as c:
        body = {"server": {"name": "lk", "flavorRef": flavor, "imageRef": image, "networks": "none"}}
        sid = c.post(f"{API}/servers", json=body).json()["server"]["id"]
        wait_for(lambda: c.get(f"{API}/servers/{sid}").json()["server"]["status"] == "ACTIVE")
        assert c.post(f"{API}/servers/{sid}/action", json={"lock": None}).status_code == 202
        snap = c.post(f"{API}/servers/{sid}/action", json={"createImage": {"name": "lk-snap"}})
        assert snap.status_code == 202, snap.text
        _idle(c, sid)
        backup = _backup(c, sid, "lk-daily", "daily", 1)
        assert backup.status_code == 202, backup.text
        _idle(c, sid)
        assert _status(c, snap.json()["image_id"]) == "active"
        assert _status(c, backup.json()["image_id"]) == "active"
        refused = c.post(f"{API}/servers/{sid}/action", json={"os-stop": None})
        assert refused.status_code == 409 and "is locked" in refused.text


def test_deleting_a_server_mid_snapshot_drops_its_image(conn: Connection, cloud: Cloud, fleet: Fleet) -> None:
    """A server deleted while its snapshot, backup or shelve is held on its host (its agent
    stopped: the task pending) takes the image made for it along (as Nova deletes the image
    of a snapshot whose server went): none is left queued forever."""
    servers = [_boot(conn, fleet, "md").id]
    flavor = next(f.id for f in conn.compute.flavors() if f.name == "md.small")
    image = next(i.id for i in conn.image.images() if i.name == "md-base")
    for name in ("md-2", "md-3"):
        made = conn.compute.create_server(name=name, flavor_id=flavor, image_id=image, networks="none")
        servers.append(wait_status(conn, made, "ACTIVE").id)
    fleet.agents[0].stop()  # the tasks below stay pending on the host
    bodies = [
        {"createImage": {"name": "md-snap"}},
        {"createBackup": {"name": "md-backup", "backup_type": "daily", "rotation": 1}},
        {"shelve": None},
    ]
    with cloud.client(microversion="2.45") as c:
        made_images = []
        for sid, body in zip(servers, bodies, strict=True):
            resp = c.post(f"{API}/servers/{sid}/action", json=body)
            assert resp.status_code == 202, resp.text
            made_images.append(
                resp.json()["image_id"]
                if resp.content
                else next(i.id for i in conn.image.images() if i.name == "md-3-shelved")
            )
        assert [_status(c, i) for i in made_images] == ["queued"] * 3
        for sid in servers:
            assert c.delete(f"{API}/servers/{sid}").status_code == 204
        assert [_status(c, i) for i in made_images] == [None] * 3


def test_a_snapshot_uploaded_before_its_server_went_is_kept(
    conn: Connection, cloud: Cloud, fleet: Fleet
) -> None:
    """The upload finished (the image active) but its task's report had not come back when the
    server was deleted: the snapshot is the user's and stays (Nova deletes only an image that
    is not active yet)."""
    sid = _boot(conn, fleet, "kept").id
    fleet.agents[0].stop()  # the snapshot task stays pending on the host
    with cloud.client(microversion="2.45") as c:
        resp = c.post(f"{API}/servers/{sid}/action", json={"createImage": {"name": "kept-snap"}})
        assert resp.status_code == 202, resp.text
        image_id = resp.json()["image_id"]
        uploaded = c.put(
            f"/image/v2/images/{image_id}/file",
            content=b"disk",
            headers={"Content-Type": "application/octet-stream"},
        )
        assert uploaded.status_code == 204, uploaded.text
        assert _status(c, image_id) == "active"
        assert c.delete(f"{API}/servers/{sid}").status_code == 204
        assert _status(c, image_id) == "active"


# action → (the request body, the state the server reaches once it is done)
PAUSED_OR_SUSPENDED = [
    ("pause", "PAUSED", {"createImage": {"name": "snap"}}, "PAUSED"),
    ("suspend", "SUSPENDED", {"createImage": {"name": "snap"}}, "SUSPENDED"),
    ("pause", "PAUSED", {"createBackup": {"name": "bk", "backup_type": "d", "rotation": 1}}, "PAUSED"),
    (
        "suspend",
        "SUSPENDED",
        {"createBackup": {"name": "bk", "backup_type": "d", "rotation": 1}},
        "SUSPENDED",
    ),
    ("pause", "PAUSED", {"shelve": None}, "SHELVED_OFFLOADED"),
    ("suspend", "SUSPENDED", {"shelve": {}}, "SHELVED_OFFLOADED"),
]


def test_imaging_and_shelving_paused_and_suspended_servers(
    conn: Connection, cloud: Cloud, fleet: Fleet
) -> None:
    server = _boot(conn, fleet, "ps")
    sid = server.id
    with cloud.client(microversion="2.45") as c:
        for setup, setup_status, body, done_status in PAUSED_OR_SUSPENDED:
            assert c.post(f"{API}/servers/{sid}/action", json={setup: None}).status_code == 202
            assert _idle(c, sid)["status"] == setup_status
            resp = c.post(f"{API}/servers/{sid}/action", json=body)
            assert resp.status_code == 202, (body, resp.text)
            shown = _idle(c, sid)
            assert shown["status"] == done_status, (body, shown["status"])
            image_id = resp.json()["image_id"] if resp.content else None
            if image_id is not None:
                assert _status(c, image_id) == "active"
            if done_status == "SHELVED_OFFLOADED":
                assert c.post(f"{API}/servers/{sid}/action", json={"unshelve": None}).status_code == 202
                wait_for(lambda: _idle(c, sid)["status"] == "ACTIVE")
            else:
                undo = "unpause" if setup == "pause" else "resume"
                assert c.post(f"{API}/servers/{sid}/action", json={undo: None}).status_code == 202
                assert _idle(c, sid)["status"] == "ACTIVE"
        # a rescued server is still refused, as Nova
        assert c.post(f"{API}/servers/{sid}/action", json={"rescue": None}).status_code == 200
        assert _idle(c, sid)["status"] == "RESCUE"
        for body in ({"createImage": {"name": "x"}}, {"shelve": None}):
            assert c.post(f"{API}/servers/{sid}/action", json=body).status_code == 409
