"""Compute microversions 2.65 … 2.96 through the API on SQLite: for each version that changes a
shape, the same request at N-1 and at N, and the difference asserted (docs/compatibility-compute.md
is the table of what each version does in kumo). Servers are written straight to the database
(no agent needed) unless the version concerns a create."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx

from kumo.compute.microversion import MAX_VERSION
from kumo.compute.models import Instance, ServerGroupMember
from tests.conftest import Cloud, wait_for
from tests.functional.compute.helpers import (
    API,
    add_instance,
    database,
    demo_token,
    project_id,
    register_hosts,
)


def _at(cloud: Cloud, version: str, token: str | None = None) -> httpx.Client:
    return cloud.client(token, microversion=version)


def _show(c: httpx.Client, sid: str) -> dict[str, Any]:
    resp = c.get(f"{API}/servers/{sid}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["server"])


def _image(c: httpx.Client) -> str:
    image = c.post(
        "/image/v2/images",
        json={"name": "img", "disk_format": "raw", "container_format": "bare", "visibility": "public"},
    ).json()
    upload = c.put(
        f"/image/v2/images/{image['id']}/file",
        content=b"x" * 512,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 204
    return str(image["id"])


def _flavor(c: httpx.Client) -> str:
    resp = c.post(f"{API}/flavors", json={"flavor": {"name": "mv1", "vcpus": 1, "ram": 256, "disk": 1}})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["flavor"]["id"])


def test_advertised_maximum(cloud: Cloud) -> None:
    with _at(cloud, "latest") as c:
        resp = c.get(f"{API}/servers")
        assert resp.headers["OpenStack-API-Version"] == "compute 2.96"
        version = c.get("/compute/v2.1").json()["version"]
        assert version["version"] == "2.96" and MAX_VERSION == (2, 96)
    with _at(cloud, "2.97") as c:
        assert c.get(f"{API}/servers").status_code == 406


def test_server_bodies_by_version(cloud: Cloud) -> None:
    """2.71 server_groups, 2.73 locked_reason, 2.75 update body, 2.90 hostname for the owner,
    2.96 pinned_availability_zone: absent at N-1, present at N."""
    demo = demo_token(cloud)
    with _at(cloud, "2.96") as admin:
        demo_project = project_id(admin, "demo")
    sid = add_instance(cloud, None, demo_project, name="mv")
    with _at(cloud, "2.64", demo) as c:
        group = c.post(f"{API}/os-server-groups", json={"server_group": {"name": "g", "policy": "affinity"}})
        gid = group.json()["server_group"]["id"]
    db = database(cloud)
    try:
        with db.transaction() as s:
            instance = s.query(Instance).filter(Instance.uuid == sid).one()
            instance.server_group, instance.requested_az, instance.hostname = gid, "az1", "mv-host"
            s.add(ServerGroupMember(group_uuid=gid, instance_uuid=sid))
    finally:
        db.dispose()
    with _at(cloud, "2.73", demo) as c:
        lock = c.post(f"{API}/servers/{sid}/action", json={"lock": {"locked_reason": "maintenance"}})
        assert lock.status_code == 202, lock.text
    cases: list[tuple[str, str, Any]] = [
        ("2.71", "server_groups", [gid]),
        ("2.73", "locked_reason", "maintenance"),
        ("2.90", "OS-EXT-SRV-ATTR:hostname", "mv-host"),
        ("2.96", "pinned_availability_zone", "az1"),
    ]
    for version, key, value in cases:
        before = f"2.{int(version.split('.')[1]) - 1}"
        with _at(cloud, before, demo) as c:
            assert key not in _show(c, sid), (before, key)
        with _at(cloud, version, demo) as c:
            assert _show(c, sid)[key] == value, (version, key)
    # server_groups is in the show body, never in a list
    with _at(cloud, "2.96", demo) as c:
        listed = c.get(f"{API}/servers/detail").json()["servers"][0]
        assert "server_groups" not in listed and listed["locked_reason"] == "maintenance"
    # 2.75: the update response is the show body
    for version, full in (("2.74", False), ("2.75", True)):
        with _at(cloud, version, demo) as c:
            updated = c.put(f"{API}/servers/{sid}", json={"server": {"name": "mv"}})
            assert updated.status_code == 200, updated.text
            assert ("OS-EXT-STS:vm_state" in updated.json()["server"]) is full, version
    # unlock clears the reason; a lock body before 2.73 is not read
    with _at(cloud, "2.73", demo) as c:
        assert c.post(f"{API}/servers/{sid}/action", json={"unlock": None}).status_code == 202
        assert _show(c, sid)["locked_reason"] is None
        bad = c.post(f"{API}/servers/{sid}/action", json={"lock": {"reason": "x"}})
        assert bad.status_code == 400
        too_long = c.post(f"{API}/servers/{sid}/action", json={"lock": {"locked_reason": "x" * 256}})
        assert too_long.status_code == 400
    with _at(cloud, "2.72", demo) as c:
        assert c.post(f"{API}/servers/{sid}/action", json={"lock": {"reason": "x"}}).status_code == 202
    # 2.90: the owner renames the hostname (2.94: a fully qualified one)
    with _at(cloud, "2.90", demo) as c:
        ok = c.put(f"{API}/servers/{sid}", json={"server": {"hostname": "web-1"}})
        assert ok.json()["server"]["OS-EXT-SRV-ATTR:hostname"] == "web-1"
        assert (
            c.put(f"{API}/servers/{sid}", json={"server": {"hostname": "web.example.org"}}).status_code == 400
        )
    with _at(cloud, "2.89", demo) as c:
        assert c.put(f"{API}/servers/{sid}", json={"server": {"hostname": "web-1"}}).status_code == 400
    with _at(cloud, "2.94", demo) as c:
        fqdn = c.put(f"{API}/servers/{sid}", json={"server": {"hostname": "web.example.org"}})
        assert fqdn.json()["server"]["OS-EXT-SRV-ATTR:hostname"] == "web.example.org"
        assert c.put(f"{API}/servers/{sid}", json={"server": {"hostname": "bad host"}}).status_code == 400


def test_list_filters_by_version(cloud: Cloud) -> None:
    """2.66 changes-before, 2.73 locked, 2.75 unknown parameters, 2.83 owners' filters."""
    demo = demo_token(cloud)
    with _at(cloud, "2.96") as admin:
        demo_project = project_id(admin, "demo")
    old = add_instance(cloud, None, demo_project, name="old")
    new = add_instance(cloud, None, demo_project, name="new")
    db = database(cloud)
    try:
        with db.transaction() as s:
            s.query(Instance).filter(Instance.uuid == old).update(
                {"updated_at": dt.datetime(2020, 1, 1), "key_name": "k1", "locked": True}
            )
    finally:
        db.dispose()

    def names(version: str, query: str) -> set[str] | int:
        with _at(cloud, version, demo) as c:
            resp = c.get(f"{API}/servers?{query}")
            return (
                {s["name"] for s in resp.json()["servers"]} if resp.status_code == 200 else resp.status_code
            )

    both = {"old", "new"}
    cases = [
        ("2.65", "changes-before=2021-01-01T00:00:00Z", both),  # not read before 2.66
        ("2.66", "changes-before=2021-01-01T00:00:00Z", {"old"}),
        ("2.66", "changes-before=yesterday", 400),
        ("2.66", "changes-since=2021-01-01T00:00:00Z&changes-before=2020-01-01T00:00:00Z", 400),
        ("2.72", "locked=true", both),
        ("2.73", "locked=true", {"old"}),
        ("2.73", "locked=false", {"new"}),
        ("2.73", "locked=maybe", 400),
        ("2.74", "nonsense=1", both),
        ("2.75", "nonsense=1", 400),
        ("2.82", "key_name=k1", both),  # a non-admin's key_name filter is Nova's from 2.83
        ("2.83", "key_name=k1", {"old"}),
        ("2.83", "vm_state=active&power_state=0", both),
    ]
    for version, query, expected in cases:
        assert names(version, query) == expected, (version, query)
    with _at(cloud, "2.82") as admin:  # admins had them at every version
        listed = admin.get(f"{API}/servers?all_tenants=1&key_name=k1").json()["servers"]
        assert [s["id"] for s in listed] == [old]
    assert new


def test_create_by_version(cloud: Cloud) -> None:
    """2.74 host/hypervisor_hostname (admin), 2.90 hostname, 2.52 tags."""
    register_hosts(cloud, "mv-h1")
    with _at(cloud, "2.96") as c:
        flavor, image = _flavor(c), _image(c)

    def create(version: str, token: str | None = None, **extra: Any) -> httpx.Response:
        body = {"server": {"name": "s", "flavorRef": flavor, "imageRef": image, "networks": "none", **extra}}
        with _at(cloud, version, token) as c:
            return c.post(f"{API}/servers", json=body)

    demo = demo_token(cloud)
    assert create("2.74", demo, host="mv-h1").status_code == 403
    assert create("2.74", host="nowhere").status_code == 400
    assert create("2.74", hypervisor_hostname="nowhere").status_code == 400
    assert create("2.74", host="mv-h1", availability_zone="nova:mv-h1").status_code == 400
    placed = create("2.74", host="mv-h1")
    assert placed.status_code == 202, placed.text
    with _at(cloud, "2.96") as c:
        sid = placed.json()["server"]["id"]
        # the scheduler places it on the host asked for
        assert wait_for(lambda: _show(c, sid)["OS-EXT-SRV-ATTR:host"] == "mv-h1")
    named = create("2.90", hostname="db-1")
    with _at(cloud, "2.90") as c:
        assert _show(c, named.json()["server"]["id"])["OS-EXT-SRV-ATTR:hostname"] == "db-1"
    assert create("2.90", hostname="db-1", max_count=2).status_code == 400
    assert create("2.90", hostname="a.b").status_code == 400
    assert create("2.94", hostname="a.example.org").status_code == 202
    assert create("2.51", tags=["t"]).status_code == 400
    tagged = create("2.52", tags=["t"])
    with _at(cloud, "2.52") as c:
        assert _show(c, tagged.json()["server"]["id"])["tags"] == ["t"]


def test_server_subresources_by_version(cloud: Cloud) -> None:
    """2.78 topology; 2.79/2.85/2.89 volume attachments (no volumes: 404s); 2.66/2.84 actions."""
    with _at(cloud, "2.96") as admin:
        sid = add_instance(cloud, None, project_id(admin, "admin"))
    volume = str(uuid.uuid4())
    with _at(cloud, "2.77") as c:
        assert c.get(f"{API}/servers/{sid}/topology").status_code == 404
    with _at(cloud, "2.78") as c:
        assert c.get(f"{API}/servers/{sid}/topology").json() == {"nodes": [], "pagesize_kb": None}
    attach = {"volumeAttachment": {"volumeId": volume, "delete_on_termination": True}}
    with _at(cloud, "2.78") as c:
        assert c.post(f"{API}/servers/{sid}/os-volume_attachments", json=attach).status_code == 400
    with _at(cloud, "2.79") as c:
        missing = c.post(f"{API}/servers/{sid}/os-volume_attachments", json=attach)
        assert missing.status_code == 404 and volume in missing.text
        assert c.get(f"{API}/servers/{sid}/os-volume_attachments").json() == {"volumeAttachments": []}
        bad = {"volumeAttachment": {"volumeId": "nope"}}
        assert c.post(f"{API}/servers/{sid}/os-volume_attachments", json=bad).status_code == 400
    update = {"volumeAttachment": {"volumeId": volume, "delete_on_termination": False}}
    with _at(cloud, "2.84") as c:
        assert c.put(f"{API}/servers/{sid}/os-volume_attachments/{volume}", json=update).status_code == 400
    with _at(cloud, "2.85") as c:
        assert c.put(f"{API}/servers/{sid}/os-volume_attachments/{volume}", json=update).status_code == 404
        assert c.delete(f"{API}/servers/{sid}/os-volume_attachments/{volume}").status_code == 404
    # instance actions: a lock recorded now; 2.84 event details; 2.66 changes-before
    with _at(cloud, "2.96") as c:
        assert c.post(f"{API}/servers/{sid}/action", json={"lock": None}).status_code == 202
    for version, has_details in (("2.83", False), ("2.84", True)):
        with _at(cloud, version) as c:
            actions = c.get(f"{API}/servers/{sid}/os-instance-actions").json()["instanceActions"]
            shown = c.get(f"{API}/servers/{sid}/os-instance-actions/{actions[0]['request_id']}").json()
            event = shown["instanceAction"]["events"][0]
            assert ("details" in event) is has_details, version
    past = "changes-before=2020-01-01T00:00:00Z"
    with _at(cloud, "2.65") as c:
        assert len(c.get(f"{API}/servers/{sid}/os-instance-actions?{past}").json()["instanceActions"]) == 1
    with _at(cloud, "2.66") as c:
        assert c.get(f"{API}/servers/{sid}/os-instance-actions?{past}").json()["instanceActions"] == []


def test_resources_by_version(cloud: Cloud) -> None:
    """2.75 flavor swap and hypervisor servers, 2.88 hypervisors, 2.92 keypairs, 2.81 precache,
    2.68 forced live migration."""
    register_hosts(cloud, "mv-h1")
    with _at(cloud, "2.96") as c:
        flavor = _flavor(c)
        image = _image(c)
        hid = c.get(f"{API}/os-hypervisors").json()["hypervisors"][0]["id"]
    for version, swap in (("2.74", ""), ("2.75", 0)):
        with _at(cloud, version) as c:
            assert c.get(f"{API}/flavors/{flavor}").json()["flavor"]["swap"] == swap
    with _at(cloud, "2.74") as c:
        assert "servers" not in c.get(f"{API}/os-hypervisors?with_servers=true").json()["hypervisors"][0]
    with _at(cloud, "2.75") as c:
        assert c.get(f"{API}/os-hypervisors?with_servers=true").json()["hypervisors"][0]["servers"] == []
    with _at(cloud, "2.87") as c:
        shown = c.get(f"{API}/os-hypervisors/{hid}").json()["hypervisor"]
        assert "vcpus" in shown and "uptime" not in shown
        assert c.get(f"{API}/os-hypervisors/statistics").status_code == 200
        assert c.get(f"{API}/os-hypervisors/{hid}/uptime").status_code == 200
    with _at(cloud, "2.88") as c:
        shown = c.get(f"{API}/os-hypervisors/{hid}").json()["hypervisor"]
        gone = {"vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used"}
        gone |= {"free_ram_mb", "free_disk_gb", "current_workload", "running_vms"}
        gone |= {"disk_available_least", "cpu_info"}
        assert not gone & set(shown) and "up " in shown["uptime"]
        listed = c.get(f"{API}/os-hypervisors/detail").json()["hypervisors"][0]
        assert not gone & set(listed) and "up " in listed["uptime"]
        assert c.get(f"{API}/os-hypervisors/statistics").status_code == 404
        assert c.get(f"{API}/os-hypervisors/{hid}/uptime").status_code == 404
    with _at(cloud, "2.91") as c:
        assert c.post(f"{API}/os-keypairs", json={"keypair": {"name": "gen"}}).status_code == 201
        assert c.post(f"{API}/os-keypairs", json={"keypair": {"name": "a@b.c"}}).status_code == 400
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGs0vZ1ZKZJ5Yb5QeNVSlsJFZBnyQh1b1Jc4a2D0JfzL mv@test"
    with _at(cloud, "2.92") as c:
        assert c.post(f"{API}/os-keypairs", json={"keypair": {"name": "gen2"}}).status_code == 400
        imported = c.post(
            f"{API}/os-keypairs", json={"keypair": {"name": "me@host.example", "public_key": key}}
        )
        assert imported.status_code == 201, imported.text
    with _at(cloud, "2.64") as c:
        aggregate = c.post(f"{API}/os-aggregates", json={"aggregate": {"name": "mv-agg"}}).json()["aggregate"]
    images = f"{API}/os-aggregates/{aggregate['id']}/images"
    with _at(cloud, "2.80") as c:
        assert c.post(images, json={"cache": [{"id": image}]}).status_code == 404
    with _at(cloud, "2.81") as c:
        accepted = c.post(images, json={"cache": [{"id": image}]})
        assert (accepted.status_code, accepted.content) == (202, b"")
        for body, status in (
            ({"cache": []}, 400),
            ({"cache": [{"id": image}, {"id": image}]}, 400),
            ({"cache": [{"id": str(uuid.uuid4())}]}, 400),
            ({"cache": [{"id": image, "x": 1}]}, 400),
            ({}, 400),
        ):
            assert c.post(images, json=body).status_code == status, body
        assert c.post(f"{API}/os-aggregates/999/images", json={"cache": [{"id": image}]}).status_code == 404
    with _at(cloud, "2.81", demo_token(cloud)) as c:
        assert c.post(images, json={"cache": [{"id": image}]}).status_code == 403
    with _at(cloud, "2.68") as c:
        sid = add_instance(cloud, "mv-h1", project_id(c, "admin"))
        forced = c.post(
            f"{API}/servers/{sid}/action", json={"os-migrateLive": {"host": None, "force": False}}
        )
        assert forced.status_code == 400 and "force" in forced.text
