"""Small Nova behaviours the public tempest suite checks: the adminPass asked for at create is
the one answered, accessIPv6 is normalized as Nova stores it, every version document's self
link can be followed, an aggregate id that is not an integer names no aggregate (404), the
metadata_items quota holds on create, update and rebuild (403), and a live migration to a host
that does not exist is bad input (400), os-hosts answers below 2.43 (list, zone filter, show's
resources, enable/disable, power actions), the fixed extension list, and the image proxy below
2.36 (lists, filters, pages, Nova's shape, metadata, delete). A server's `security_groups` are
its ports' (as Nova reads them from Neutron): gone from the body once every group is removed,
and never there for a server without a port. `restore` is a 409 (no server is ever
soft-deleted), and the instance usage audit log answers Nova's shape with no audit run."""

from __future__ import annotations

import httpx

from tests.conftest import Cloud
from tests.functional.compute.helpers import API, add_instance, demo_token, project_id, register_hosts
from tests.functional.helpers import make_flavor, upload_image


def _create(c: httpx.Client, flavor: str, **fields: object) -> httpx.Response:
    server = {"name": "s", "flavorRef": flavor, "imageRef": upload_image(c), "networks": "none"}
    return c.post(f"{API}/servers", json={"server": {**server, **fields}})


def test_the_admin_password_given_is_the_one_returned(cloud: Cloud) -> None:
    with cloud.client() as c:
        flavor = make_flavor(c, "tf")
        resp = _create(c, flavor, adminPass="correct-horse-battery")
        assert resp.status_code == 202, resp.text
        assert resp.json()["server"]["adminPass"] == "correct-horse-battery"
        made_up = _create(c, flavor)
        assert made_up.status_code == 202, made_up.text
        assert made_up.json()["server"]["adminPass"] not in ("", "correct-horse-battery")
        assert _create(c, flavor, adminPass=5).status_code == 400


def test_access_ipv6_is_normalized(cloud: Cloud) -> None:
    with cloud.client() as c:
        resp = _create(
            c,
            make_flavor(c, "tf"),
            accessIPv6="2001:0DB8:0000:0000:0000:0000:0000:0001",
            accessIPv4="10.1.2.3",
        )
        assert resp.status_code == 202, resp.text
        server_id = resp.json()["server"]["id"]
        shown = c.get(f"{API}/servers/{server_id}").json()["server"]
        assert (shown["accessIPv6"], shown["accessIPv4"]) == ("2001:db8::1", "10.1.2.3")
        updated = c.put(f"{API}/servers/{server_id}", json={"server": {"accessIPv6": "::babe:67.23.10.132"}})
        assert updated.status_code == 200, updated.text
        assert updated.json()["server"]["accessIPv6"] == "::babe:4317:a84"


def test_every_version_self_link_is_followable(cloud: Cloud) -> None:
    versions = httpx.get(f"{cloud.url}/compute/").json()["versions"]
    assert {v["id"] for v in versions} == {"v2.0", "v2.1"}
    for entry in versions:
        (self_link,) = [link for link in entry["links"] if link["rel"] == "self"]
        resp = httpx.get(self_link["href"])
        assert resp.status_code == 200, (self_link, resp.text)
        assert resp.json()["version"]["id"] == entry["id"]


def test_an_aggregate_id_that_is_not_an_integer_is_not_found(cloud: Cloud) -> None:
    with cloud.client() as c:
        for method, path in (
            ("GET", "/os-aggregates/abc"),
            ("PUT", "/os-aggregates/abc"),
            ("DELETE", "/os-aggregates/abc"),
            ("GET", "/os-aggregates/-1"),  # what tempest's negative tests send
            ("DELETE", "/os-aggregates/-1"),
            ("POST", "/os-aggregates/1.5/action"),
        ):
            body = {"aggregate": {"name": "x"}} if method == "PUT" else None
            if path.endswith("action"):
                body = {"add_host": {"host": "h"}}
            resp = c.request(method, f"{API}{path}", json=body)
            assert resp.status_code == 404, (method, path, resp.text)
            assert "could not be found" in resp.json()["itemNotFound"]["message"]


def test_metadata_items_quota_is_enforced(cloud: Cloud) -> None:
    with cloud.client() as c:
        flavor = make_flavor(c, "tf")
        too_many = {f"k{i}": "v" for i in range(129)}
        over = _create(c, flavor, metadata=too_many)
        assert over.status_code == 403, over.text
        assert "metadata_items" in over.json()["forbidden"]["message"]
        enough = {f"k{i}": "v" for i in range(128)}
        made = _create(c, flavor, metadata=enough)
        assert made.status_code == 202, made.text
        sid = made.json()["server"]["id"]
        more = c.post(f"{API}/servers/{sid}/metadata", json={"metadata": {"extra": "v"}})
        assert more.status_code == 403, more.text
        one = c.put(f"{API}/servers/{sid}/metadata/extra", json={"meta": {"extra": "v"}})
        assert one.status_code == 403, one.text
        replaced = c.put(f"{API}/servers/{sid}/metadata", json={"metadata": {"a": "b"}})
        assert replaced.status_code == 200 and replaced.json()["metadata"] == {"a": "b"}
        admin = project_id(c, "admin")
        lowered = c.put(f"{API}/os-quota-sets/{admin}", json={"quota_set": {"metadata_items": 1}})
        assert lowered.status_code == 200, lowered.text
        assert _create(c, flavor, metadata={"a": "1", "b": "2"}).status_code == 403
        assert c.get(f"{API}/servers/{sid}/metadata").json()["metadata"] == {"a": "b"}


def test_live_migration_to_a_host_that_does_not_exist_is_bad_input(cloud: Cloud) -> None:
    register_hosts(cloud, "tf-src")
    with cloud.client() as c:
        sid = add_instance(cloud, "tf-src", project_id(c, "admin"))
        for action in (
            {"os-migrateLive": {"host": "tf-nowhere", "block_migration": "auto"}},
            {"migrate": {"host": "tf-nowhere"}},
        ):
            resp = c.post(
                f"{API}/servers/{sid}/action", json=action, headers={"OpenStack-API-Version": "compute 2.56"}
            )
            assert resp.status_code == 400, resp.text
            assert resp.json()["badRequest"]["message"] == "Compute host tf-nowhere could not be found."
        shown = c.get(f"{API}/servers/{sid}").json()["server"]
        assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "tf-src")


def test_os_hosts_below_2_43(cloud: Cloud) -> None:
    register_hosts(cloud, "tf-h1", "tf-h2")
    old = {"OpenStack-API-Version": "compute 2.42"}
    with cloud.client() as c:
        zone = c.post(
            f"{API}/os-aggregates", json={"aggregate": {"name": "tf-agg", "availability_zone": "tf-az"}}
        )
        agg_id = zone.json()["aggregate"]["id"]
        added = c.post(f"{API}/os-aggregates/{agg_id}/action", json={"add_host": {"host": "tf-h2"}})
        assert added.status_code == 200, added.text
        add_instance(cloud, "tf-h1", project_id(c, "demo"), vcpus=2, ram=256, disk=3)
        listed = c.get(f"{API}/os-hosts", headers=old)
        assert listed.status_code == 200, listed.text
        assert listed.json()["hosts"] == [
            {"host_name": "tf-h1", "service": "compute", "zone": "nova"},
            {"host_name": "tf-h2", "service": "compute", "zone": "tf-az"},
        ]
        in_zone = c.get(f"{API}/os-hosts", params={"zone": "tf-az"}, headers=old).json()["hosts"]
        assert [h["host_name"] for h in in_zone] == ["tf-h2"]
        assert len(c.get(f"{API}/os-hosts", params={"zone": ""}, headers=old).json()["hosts"]) == 2
        assert c.get(f"{API}/os-hosts", params={"zone": "nowhere"}, headers=old).json()["hosts"] == []
        shown = c.get(f"{API}/os-hosts/tf-h1", headers=old)
        assert shown.status_code == 200, shown.text
        rows = [entry["resource"] for entry in shown.json()["host"]]
        assert [r["project"] for r in rows] == ["(total)", "(used_now)", "(used_max)", project_id(c, "demo")]
        assert all(
            set(r) == {"host", "project", "cpu", "memory_mb", "disk_gb"} and r["host"] == "tf-h1"
            for r in rows
        )
        assert (rows[0]["cpu"], rows[0]["memory_mb"], rows[0]["disk_gb"]) == (8, 16384, 100)
        assert (
            (rows[2]["cpu"], rows[2]["memory_mb"], rows[2]["disk_gb"])
            == (2, 256, 3)
            == tuple(rows[3][k] for k in ("cpu", "memory_mb", "disk_gb"))
        )
        assert rows[1]["memory_mb"] == 256 + 512  # the allocation plus the host's reserved memory
        disabled = c.put(f"{API}/os-hosts/tf-h1", json={"status": "Disable"}, headers=old)
        assert disabled.status_code == 200 and disabled.json() == {"host": "tf-h1", "status": "disabled"}
        services = c.get(f"{API}/os-services", params={"host": "tf-h1"}).json()["services"]
        assert services[0]["status"] == "disabled"
        assert (
            c.put(f"{API}/os-hosts/tf-h1", json={"status": "enable"}, headers=old).json()["status"]
            == "enabled"
        )
        for body, code in (
            ({"status": "invalid"}, 400),
            ({"maintenance_mode": "invalid"}, 400),
            ({}, 400),
            ({"status": "enable", "other": 1}, 400),
            ({"status": None, "maintenance_mode": None}, 400),  # tempest's update_host() with no argument
            ({"status": "enable", "maintenance_mode": None}, 400),
            ({"maintenance_mode": "enable"}, 501),
        ):
            assert c.put(f"{API}/os-hosts/tf-h1", json=body, headers=old).status_code == code, body
        both = {"status": "enable", "maintenance_mode": "enable"}
        assert c.put(f"{API}/os-hosts/tf-nope", json=both, headers=old).status_code == 404
        assert c.get(f"{API}/os-hosts/tf-nope", headers=old).status_code == 404
        for action in ("startup", "shutdown", "reboot"):
            assert c.get(f"{API}/os-hosts/tf-h1/{action}", headers=old).status_code == 501
            assert c.get(f"{API}/os-hosts/tf-nope/{action}", headers=old).status_code == 404
        for path in ("/os-hosts", "/os-hosts/tf-h1"):
            assert c.get(f"{API}{path}", headers={"OpenStack-API-Version": "compute 2.43"}).status_code == 404
    with cloud.client(token=demo_token(cloud), microversion="2.42") as demo:
        for method, path in (
            ("GET", "/os-hosts"),
            ("GET", "/os-hosts/tf-h1"),
            ("PUT", "/os-hosts/tf-h1"),
            ("GET", "/os-hosts/tf-h1/reboot"),
        ):
            body = {"status": "enable"} if method == "PUT" else None
            assert demo.request(method, f"{API}{path}", json=body).status_code == 403, (method, path)


def test_extensions_are_nova_s_fixed_list(cloud: Cloud) -> None:
    with cloud.client(token=demo_token(cloud)) as c:
        listed = c.get(f"{API}/extensions")
        assert listed.status_code == 200, listed.text
        extensions = listed.json()["extensions"]
        assert "Hosts" in [e["name"] for e in extensions]
        for extension in extensions:
            assert set(extension) == {"alias", "name", "description", "namespace", "updated", "links"}
        assert len({e["alias"] for e in extensions}) == len(extensions)
        shown = c.get(f"{API}/extensions/os-consoles")
        assert shown.status_code == 200 and shown.json()["extension"]["alias"] == "os-consoles"
        assert c.get(f"{API}/extensions/os-nothing").status_code == 404


def test_the_image_proxy_below_2_36(cloud: Cloud) -> None:
    with cloud.client(microversion="2.35") as c:
        active = upload_image(c, name="tf-active", content=b"y" * 2048)
        queued = c.post("/image/v2/images", json={"name": "tf-queued", "min_ram": 64, "min_disk": 2}).json()[
            "id"
        ]
        brief = c.get(f"{API}/images").json()
        assert {i["id"] for i in brief["images"]} == {active, queued}
        assert all(set(i) == {"id", "name", "links"} for i in brief["images"])
        assert [link["rel"] for link in brief["images"][0]["links"]] == ["self", "bookmark", "alternate"]
        detail = {i["id"]: i for i in c.get(f"{API}/images/detail").json()["images"]}
        shown = c.get(f"{API}/images/{queued}").json()["image"]
        assert shown == detail[queued]
        assert (shown["status"], shown["progress"], shown["minRam"], shown["minDisk"]) == (
            "SAVING",
            25,
            64,
            2,
        )
        assert shown["OS-EXT-IMG-SIZE:size"] is None and shown["metadata"] == {}
        assert shown["created"].endswith("Z") and "server" not in shown
        assert (detail[active]["status"], detail[active]["progress"]) == ("ACTIVE", 100)
        assert detail[active]["OS-EXT-IMG-SIZE:size"] == 2048
        for params, expected in (
            ({"name": "tf-active"}, [active]),
            ({"status": "QUEUED"}, [queued]),  # Nova lower-cases the status for Glance
            ({"status": "SAVING"}, []),
            ({"status": "ACTIVE"}, [active]),
            ({"changes-since": "2000-01-01T00:00:00Z"}, sorted([active, queued])),
            ({"changes-since": "2999-01-01T00:00:00Z"}, []),
        ):
            found = c.get(f"{API}/images/detail", params=params).json()["images"]
            assert sorted(i["id"] for i in found) == sorted(expected), params
        first = c.get(f"{API}/images", params={"limit": 1}).json()
        (nxt,) = first["images_links"]
        second = c.get(nxt["href"]).json()
        assert {first["images"][0]["id"], second["images"][0]["id"]} == {active, queued}
        # Metadata: merge, replace, one item, delete; the snapshot properties become filters.
        meta = f"{API}/images/{active}/metadata"
        merged = c.post(meta, json={"metadata": {"image_type": "snapshot", "instance_uuid": "tf-server"}})
        assert merged.status_code == 200, merged.text
        assert merged.json()["metadata"] == {"image_type": "snapshot", "instance_uuid": "tf-server"}
        for params in (
            {"type": "snapshot"},
            {"server": "tf-server"},
            {"server": f"{cloud.url}/compute/v2.1/servers/tf-server"},  # a server link, as tempest sends
        ):
            assert [i["id"] for i in c.get(f"{API}/images/detail", params=params).json()["images"]] == [
                active
            ]
        assert c.get(f"{API}/images/{active}").json()["image"]["server"]["id"] == "tf-server"
        assert c.put(meta, json={"metadata": {"os_distro": "debian"}}).json()["metadata"] == {
            "os_distro": "debian"
        }
        assert c.get(f"{meta}/os_distro").json() == {"meta": {"os_distro": "debian"}}
        assert c.put(f"{meta}/arch", json={"meta": {"arch": "x86_64"}}).json() == {"meta": {"arch": "x86_64"}}
        assert c.get(meta).json()["metadata"] == {"os_distro": "debian", "arch": "x86_64"}
        assert c.put(f"{meta}/arch", json={"meta": {"other": "x"}}).status_code == 400
        assert c.put(f"{meta}/arch", json={"meta": {"arch": "x", "b": "y"}}).status_code == 400
        assert c.post(meta, json={"metadata": {f"k{i}": "v" for i in range(129)}}).status_code == 403
        assert c.delete(f"{meta}/arch").status_code == 204
        assert c.get(f"{meta}/arch").status_code == 404
        assert c.delete(f"{meta}/arch").status_code == 404
        assert c.delete(f"{API}/images/{queued}").status_code == 204
        missing = c.get(f"{API}/images/{queued}")
        assert missing.status_code == 404 and missing.json()["itemNotFound"]["message"] == "Image not found."
        for path in ("/images", "/images/detail", f"/images/{active}", f"/images/{active}/metadata"):
            assert c.get(f"{API}{path}", headers={"OpenStack-API-Version": "compute 2.36"}).status_code == 404


def test_security_groups_shown_are_the_ports_groups(cloud: Cloud) -> None:
    with cloud.client() as c:
        net = c.post("/networking/v2.0/networks", json={"network": {"name": "tf-net"}}).json()["network"]
        subnet = {"network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4}
        assert c.post("/networking/v2.0/subnets", json={"subnet": subnet}).status_code == 201
        flavor = make_flavor(c, "tf")
        created = _create(c, flavor, networks=[{"uuid": net["id"]}]).json()["server"]
        assert created["security_groups"] == [{"name": "default"}]
        server = f"{API}/servers/{created['id']}"
        assert c.get(server).json()["server"]["security_groups"] == [{"name": "default"}]
        removed = c.post(f"{server}/action", json={"removeSecurityGroup": {"name": "default"}})
        assert removed.status_code == 202, removed.text
        assert "security_groups" not in c.get(server).json()["server"]
        portless = _create(c, flavor, networks="none").json()["server"]
        assert "security_groups" not in c.get(f"{API}/servers/{portless['id']}").json()["server"]


def test_restore_is_refused_for_a_server_never_soft_deleted(cloud: Cloud) -> None:
    with cloud.client() as c:
        sid = _create(c, make_flavor(c, "tf"), networks="none").json()["server"]["id"]
        refused = c.post(f"{API}/servers/{sid}/action", json={"restore": None})
        assert refused.status_code == 409, refused.text
        assert refused.json()["conflictingRequest"]["message"].startswith(f"Cannot 'restore' instance {sid}")
        missing = c.post(f"{API}/servers/{'0' * 8}-0000-0000-0000-{'0' * 12}/action", json={"restore": None})
        assert missing.status_code == 404


def test_instance_usage_audit_log_with_no_audit_run(cloud: Cloud) -> None:
    register_hosts(cloud, "tf-b", "tf-a")
    with cloud.client() as c:
        listed = c.get(f"{API}/os-instance_usage_audit_log")
        assert listed.status_code == 200, listed.text
        assert listed.json()["instance_usage_audit_logs"]["hosts_not_run"] == ["tf-a", "tf-b"]
        shown = c.get(f"{API}/os-instance_usage_audit_log/2026-03-15 10:11:12")
        assert shown.status_code == 200, shown.text
        assert shown.json()["instance_usage_audit_log"] == {
            "hosts_not_run": ["tf-a", "tf-b"],
            "log": {},
            "num_hosts": 2,
            "num_hosts_done": 0,
            "num_hosts_not_run": 2,
            "num_hosts_running": 0,
            "overall_status": "0 of 2 hosts done. 0 errors.",
            "period_beginning": "2026-02-01 00:00:00",
            "period_ending": "2026-03-01 00:00:00",
            "total_errors": 0,
            "total_instances": 0,
        }
        january = c.get(f"{API}/os-instance_usage_audit_log/2026-01-01 00:00:00.5").json()
        assert january["instance_usage_audit_log"]["period_beginning"] == "2025-12-01 00:00:00"
        for text in ("invalid_time", "0001-01-15 00:00:00"):
            bad = c.get(f"{API}/os-instance_usage_audit_log/{text}")
            assert bad.status_code == 400 and "Invalid timestamp" in bad.text, text
    with cloud.client(token=demo_token(cloud)) as demo:
        for path in ("/os-instance_usage_audit_log", "/os-instance_usage_audit_log/invalid_time"):
            assert demo.get(f"{API}{path}").status_code == 403, path
