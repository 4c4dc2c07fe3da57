"""More Nova behaviours the public tempest suite checks: the 2.75 rebuild answer's extended
attributes (no OS-EXT-SRV-ATTR:user_data, user_data under its own name), 404s for
`DELETE /images/` and an empty project's usage, and the servers of one multiple create found by
their reservation id, placed together (affinity) or apart (anti-affinity) on several hosts."""

from __future__ import annotations

import httpx

from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.helpers import API
from tests.functional.helpers import make_flavor, upload_image


def _server(c: httpx.Client, **fields: object) -> dict[str, object]:
    flavors = {f["name"]: f["id"] for f in c.get(f"{API}/flavors").json()["flavors"]}
    images = c.get("/image/v2/images", params={"name": "img"}).json()["images"]
    flavor = flavors.get("tf") or make_flavor(c, "tf")
    image = images[0]["id"] if images else upload_image(c)
    return {"name": "s", "flavorRef": flavor, "imageRef": image, "networks": "none", **fields}


def test_rebuild_at_2_75_answers_user_data_under_its_own_name(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("h1")
    with cloud.client(microversion="2.75") as c:
        resp = c.post(f"{API}/servers", json={"server": _server(c, user_data="IyEvYmluL3NoCg==")})
        assert resp.status_code == 202, resp.text
        sid = resp.json()["server"]["id"]
        wait_for(lambda: c.get(f"{API}/servers/{sid}").json()["server"]["status"] == "ACTIVE")
        shown = c.get(f"{API}/servers/{sid}").json()["server"]
        assert shown["OS-EXT-SRV-ATTR:user_data"] == "IyEvYmluL3NoCg=="  # show keeps it (admin)
        image = shown["image"]["id"]
        rebuilt = c.post(f"{API}/servers/{sid}/action", json={"rebuild": {"imageRef": image}})
        assert rebuilt.status_code == 202, rebuilt.text
        server = rebuilt.json()["server"]
        # Nova's rebuild view leaves user_data out of the extended attributes (show_user_data)
        assert "OS-EXT-SRV-ATTR:user_data" not in server
        assert server["user_data"] == "IyEvYmluL3NoCg=="
        assert server["OS-EXT-SRV-ATTR:reservation_id"] == shown["OS-EXT-SRV-ATTR:reservation_id"]
        assert "adminPass" in server  # enable_instance_password (kumo's enable_admin_password)


def test_blank_ids_are_not_found(cloud: Cloud) -> None:
    with cloud.client() as c:
        resp = c.delete(f"{API}/images/")
        assert resp.status_code == 404, resp.text
        assert "itemNotFound" in resp.json()
        period = {"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00"}
        usage = c.get(f"{API}/os-simple-tenant-usage/", params=period)
        assert usage.status_code == 404, usage.text
        assert c.get(f"{API}/os-simple-tenant-usage", params=period).status_code == 200  # the list


def _group_create(c: httpx.Client, policy: str) -> tuple[str, list[dict[str, object]]]:
    group = c.post(f"{API}/os-server-groups", json={"server_group": {"name": policy, "policies": [policy]}})
    assert group.status_code == 200, group.text
    gid = group.json()["server_group"]["id"]
    made = c.post(
        f"{API}/servers",
        json={
            "server": _server(c, min_count=2, return_reservation_id=True),
            "os:scheduler_hints": {"group": gid},
        },
    )
    assert made.status_code == 202, made.text
    reservation = made.json()["reservation_id"]

    def active() -> list[dict[str, object]] | None:
        listed = c.get(f"{API}/servers/detail", params={"reservation_id": reservation}).json()["servers"]
        return listed if listed and all(s["status"] == "ACTIVE" for s in listed) else None

    return gid, wait_for(active)


def test_a_multiple_create_in_a_group_on_several_hosts(cloud: Cloud, fleet: Fleet) -> None:
    for name in ("h1", "h2", "h3"):
        fleet.add(name)
    with cloud.client() as c:
        # another server first: a reservation id finds its own create's servers only
        c.post(f"{API}/servers", json={"server": _server(c)})
        for policy, distinct_hosts in (("affinity", 1), ("anti-affinity", 2)):
            gid, servers = _group_create(c, policy)
            assert len(servers) == 2, servers
            members = c.get(f"{API}/os-server-groups/{gid}").json()["server_group"]["members"]
            assert sorted(members) == sorted(str(s["id"]) for s in servers)
            assert len({s["OS-EXT-SRV-ATTR:host"] for s in servers}) == distinct_hosts, policy
        assert c.get(f"{API}/servers", params={"reservation_id": "r-none"}).json()["servers"] == []
