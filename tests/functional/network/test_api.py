"""The Neutron v2.0 subset over HTTP on a real kumo (SQLite): discovery, the catalog, error
bodies and status codes, visibility between projects, admin-only attributes, quotas."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kumo.network import dhcp
from tests.conftest import DEMO_PASSWORD, Cloud

V2 = "/networking/v2.0"


@pytest.fixture
def admin(cloud: Cloud) -> httpx.Client:
    return cloud.client()


@pytest.fixture
def demo(cloud: Cloud) -> httpx.Client:
    return cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo"))


def created(resp: httpx.Response, key: str) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()[key]
    return body


def neutron_error(resp: httpx.Response, status: int, kind: str) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    error = resp.json()["NeutronError"]
    assert error["type"] == kind and error["detail"] == ""
    message: str = error["message"]
    return message


def test_discovery_and_catalog(cloud: Cloud, admin: httpx.Client) -> None:
    for path in ("/networking", "/networking/"):
        resp = httpx.get(cloud.url + path)  # no token, as keystoneauth's discovery asks
        assert resp.status_code == 200
        (version,) = resp.json()["versions"]
        assert version["id"] == "v2.0" and version["status"] == "CURRENT"
        assert version["links"][0]["href"] == f"{cloud.url}/networking/v2.0/"
    assert httpx.post(cloud.url + "/networking").status_code == 405
    collections = {r["collection"] for r in admin.get(V2 + "/").json()["resources"]}
    assert collections == {"networks", "subnets", "ports"}
    catalog = admin.get("/identity/v3/auth/catalog").json()["catalog"]
    (network,) = [s for s in catalog if s["type"] == "network"]
    assert network["name"] == "neutron"
    assert {e["url"] for e in network["endpoints"]} == {f"{cloud.url}/networking"}
    for empty in ("routers", "floatingips", "availability_zones", "subnetpools"):
        assert admin.get(f"{V2}/{empty}").json() == {empty: []}
    aliases = {e["alias"] for e in admin.get(V2 + "/extensions").json()["extensions"]}
    assert {"security-group", "binding", "quotas", "quota_details", "port-security"} <= aliases
    assert admin.get(V2 + "/extensions/binding").json()["extension"]["name"] == "Port Binding"
    neutron_error(admin.get(V2 + "/extensions/dvr"), 404, "ExtensionNotFound")
    neutron_error(httpx.get(cloud.url + V2 + "/networks"), 401, "HTTPUnauthorized")


def test_network_subnet_port_and_their_errors(admin: httpx.Client) -> None:
    net = created(admin.post(V2 + "/networks", json={"network": {"name": "n1", "mtu": 1400}}), "network")
    assert (net["status"], net["mtu"], net["shared"], net["router:external"]) == (
        "ACTIVE",
        1400,
        False,
        False,
    )
    assert net["tenant_id"] == net["project_id"] and net["subnets"] == []
    assert net["provider:network_type"] == "local"  # admin sees provider attributes
    sub = created(
        admin.post(
            V2 + "/subnets",
            json={"subnet": {"name": "s1", "network_id": net["id"], "cidr": "10.20.0.7/24", "ip_version": 4}},
        ),
        "subnet",
    )
    assert (sub["cidr"], sub["gateway_ip"]) == ("10.20.0.0/24", "10.20.0.1")
    assert sub["allocation_pools"] == [{"start": "10.20.0.2", "end": "10.20.0.254"}]
    assert admin.get(f"{V2}/networks/{net['id']}").json()["network"]["subnets"] == [sub["id"]]
    (dhcp,) = admin.get(V2 + "/ports", params={"network_id": net["id"]}).json()["ports"]
    assert dhcp["device_owner"] == "network:dhcp" and dhcp["fixed_ips"][0]["ip_address"] == "10.20.0.2"

    port = created(
        admin.post(V2 + "/ports", json={"port": {"network_id": net["id"], "name": "p1", "device_id": "d1"}}),
        "port",
    )
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.20.0.3"}]
    assert (
        port["status"] == "DOWN"
        and port["binding:vif_type"] == "unbound"
        and len(port["security_groups"]) == 1
    )
    listed = admin.get(V2 + "/ports", params={"device_id": "d1", "fields": ["id", "name"]}).json()["ports"]
    assert listed == [{"id": port["id"], "name": "p1"}]
    by_ip = admin.get(V2 + "/ports", params={"fixed_ips": "ip_address=10.20.0.3"}).json()["ports"]
    assert [p["id"] for p in by_ip] == [port["id"]]

    taken = {"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.20.0.3"}]}}
    neutron_error(admin.post(V2 + "/ports", json=taken), 409, "IpAddressAlreadyAllocated")
    same_mac = {"port": {"network_id": net["id"], "mac_address": port["mac_address"]}}
    assert "is in use" in neutron_error(admin.post(V2 + "/ports", json=same_mac), 409, "MacAddressInUse")
    missing = "0" * 8 + "-0000-0000-0000-" + "0" * 12
    message = neutron_error(admin.get(f"{V2}/networks/{missing}"), 404, "NetworkNotFound")
    assert message == f"Network {missing} could not be found."
    neutron_error(admin.get(f"{V2}/ports/{missing}"), 404, "PortNotFound")
    neutron_error(admin.delete(f"{V2}/networks/{net['id']}"), 409, "NetworkInUse")
    neutron_error(admin.delete(f"{V2}/subnets/{sub['id']}"), 409, "SubnetInUse")
    v6 = {"subnet": {"network_id": net["id"], "cidr": "fd00::/64", "ip_version": 6}}
    assert "IPv6" in neutron_error(admin.post(V2 + "/subnets", json=v6), 400, "InvalidInput")
    overlap = {"subnet": {"network_id": net["id"], "cidr": "10.20.0.128/25"}}
    neutron_error(admin.post(V2 + "/subnets", json=overlap), 400, "InvalidInput")
    unknown = {"network": {"name": "x", "colour": "red"}}
    assert "colour" in neutron_error(admin.post(V2 + "/networks", json=unknown), 400, "InvalidInput")
    neutron_error(admin.post(V2 + "/networks", content=b"{nope"), 400, "InvalidInput")
    neutron_error(admin.get(V2 + "/networks", params={"colour": "red"}), 400, "InvalidInput")

    renamed = admin.put(f"{V2}/ports/{port['id']}", json={"port": {"name": "p1b"}}).json()["port"]
    assert renamed["name"] == "p1b" and renamed["revision_number"] == port["revision_number"] + 1
    assert admin.delete(f"{V2}/ports/{port['id']}").status_code == 204
    assert admin.delete(f"{V2}/networks/{net['id']}").status_code == 204  # subnet and DHCP port go too
    assert admin.get(V2 + "/ports", params={"network_id": net["id"]}).json()["ports"] == []


def test_projects_see_their_own_and_shared_networks(admin: httpx.Client, demo: httpx.Client) -> None:
    shared = created(
        admin.post(V2 + "/networks", json={"network": {"name": "pub", "shared": True}}), "network"
    )
    private = created(admin.post(V2 + "/networks", json={"network": {"name": "adm"}}), "network")
    mine = created(demo.post(V2 + "/networks", json={"network": {"name": "mine"}}), "network")
    assert "provider:network_type" not in mine  # admin-only attributes
    seen = {n["id"] for n in demo.get(V2 + "/networks").json()["networks"]}
    assert seen == {shared["id"], mine["id"]}
    neutron_error(demo.get(f"{V2}/networks/{private['id']}"), 404, "NetworkNotFound")
    neutron_error(
        demo.put(f"{V2}/networks/{shared['id']}", json={"network": {"name": "x"}}), 403, "HTTPForbidden"
    )
    neutron_error(demo.post(V2 + "/networks", json={"network": {"shared": True}}), 403, "HTTPForbidden")
    admin.post(V2 + "/subnets", json={"subnet": {"network_id": shared["id"], "cidr": "10.9.0.0/24"}})
    port = created(demo.post(V2 + "/ports", json={"port": {"network_id": shared["id"]}}), "port")
    assert "binding:host_id" not in port
    binding = {"port": {"network_id": shared["id"], "binding:host_id": "h1"}}
    neutron_error(demo.post(V2 + "/ports", json=binding), 403, "HTTPForbidden")
    admin_view = admin.get(f"{V2}/ports/{port['id']}").json()["port"]
    assert admin_view["binding:host_id"] == "" and admin_view["project_id"] == mine["project_id"]


def test_security_groups_and_rules(demo: httpx.Client) -> None:
    (default,) = demo.get(V2 + "/security-groups").json()["security_groups"]  # made on first look
    assert default["name"] == "default" and len(default["security_group_rules"]) == 4
    assert all(r["belongs_to_default_sg"] for r in default["security_group_rules"])
    web = created(
        demo.post(V2 + "/security-groups", json={"security_group": {"name": "web"}}), "security_group"
    )
    assert sorted(r["ethertype"] for r in web["security_group_rules"]) == ["IPv4", "IPv6"]
    rule = {
        "security_group_id": web["id"],
        "direction": "ingress",
        "protocol": "tcp",
        "port_range_min": 22,
        "port_range_max": 22,
        "remote_ip_prefix": "0.0.0.0/0",
        "ethertype": "IPv4",
    }
    made = created(
        demo.post(V2 + "/security-group-rules", json={"security_group_rule": rule}), "security_group_rule"
    )
    assert made["protocol"] == "tcp" and made["belongs_to_default_sg"] is False
    message = neutron_error(
        demo.post(V2 + "/security-group-rules", json={"security_group_rule": rule}),
        409,
        "SecurityGroupRuleExists",
    )
    assert made["id"] in message
    both = {**rule, "port_range_min": 80, "port_range_max": 80, "remote_group_id": web["id"]}
    neutron_error(
        demo.post(V2 + "/security-group-rules", json={"security_group_rule": both}), 400, "InvalidInput"
    )
    backwards = {**rule, "port_range_min": 90, "port_range_max": 80}
    neutron_error(
        demo.post(V2 + "/security-group-rules", json={"security_group_rule": backwards}), 400, "InvalidInput"
    )
    neutron_error(
        demo.delete(f"{V2}/security-groups/{default['id']}"), 409, "SecurityGroupCannotRemoveDefault"
    )
    assert demo.delete(f"{V2}/security-group-rules/{made['id']}").status_code == 204
    assert demo.delete(f"{V2}/security-groups/{web['id']}").status_code == 204


def test_quotas(admin: httpx.Client, demo: httpx.Client) -> None:
    project = demo.get(V2 + "/security-groups").json()["security_groups"][0]["project_id"]
    quota = demo.get(f"{V2}/quotas/{project}").json()["quota"]
    assert quota["network"] == 100 and quota["port"] == 500 and quota["subnetpool"] == -1
    assert admin.get(f"{V2}/quotas/{project}/default").json()["quota"]["security_group"] == 10
    neutron_error(demo.put(f"{V2}/quotas/{project}", json={"quota": {"network": 1}}), 403, "HTTPForbidden")
    updated = admin.put(f"{V2}/quotas/{project}", json={"quota": {"network": 1, "port": 20}}).json()["quota"]
    assert (updated["network"], updated["port"]) == (1, 20)
    assert [q["project_id"] for q in admin.get(V2 + "/quotas").json()["quotas"]] == [project]
    created(demo.post(V2 + "/networks", json={"network": {"name": "one"}}), "network")
    neutron_error(demo.post(V2 + "/networks", json={"network": {"name": "two"}}), 409, "OverQuota")
    details = demo.get(f"{V2}/quotas/{project}/details").json()["quota"]
    assert details["network"] == {"limit": 1, "used": 1, "reserved": 0}
    assert details["security_group"]["used"] == 1  # the default group
    bad = admin.put(f"{V2}/quotas/{project}", json={"quota": {"network": -5}})
    neutron_error(bad, 400, "InvalidInput")
    assert admin.delete(f"{V2}/quotas/{project}").status_code == 204
    assert demo.get(f"{V2}/quotas/{project}").json()["quota"]["network"] == 100


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_router_external_is_an_admin_attribute_that_the_network_host_is_given(
    request: pytest.FixtureRequest, database: str
) -> None:
    """router:external (Neutron's policy: admin only) on create and update; a change is a new
    DHCP generation (its host moves the gateway) and the DHCP state carries it. Both databases."""
    cloud: Cloud = request.getfixturevalue("cloud" if database == "sqlite" else "pg_cloud")
    admin = cloud.client()
    demo = cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo"))
    neutron_error(
        demo.post(V2 + "/networks", json={"network": {"name": "x", "router:external": True}}),
        403,
        "HTTPForbidden",
    )
    body = {"network": {"name": "public", "shared": True, "router:external": True}}
    public = created(admin.post(V2 + "/networks", json=body), "network")
    assert public["router:external"] is True and public["shared"] is True
    listed = demo.get(V2 + "/networks", params={"router:external": "true"}).json()["networks"]
    assert [n["id"] for n in listed] == [public["id"]]
    subnet = {"subnet": {"network_id": public["id"], "cidr": "172.24.4.0/24", "gateway_ip": "172.24.4.1"}}
    created(admin.post(V2 + "/subnets", json=subnet), "subnet")

    def state() -> tuple[int, bool, list[str | None]]:
        with cloud.server.rt.db.read() as session:
            got = dhcp.dhcp_state(session, public["id"])
        return got["generation"], got["router:external"], [s["gateway_ip"] for s in got["subnets"]]

    generation, external, gateways = state()
    assert (external, gateways) == (True, ["172.24.4.1"])
    off = {"network": {"router:external": False}}
    neutron_error(demo.put(f"{V2}/networks/{public['id']}", json=off), 403, "HTTPForbidden")
    updated = admin.put(f"{V2}/networks/{public['id']}", json=off)
    assert updated.status_code == 200 and updated.json()["network"]["router:external"] is False
    assert state()[:2] == (generation + 1, False)
    neutron_error(
        admin.post(V2 + "/networks", json={"network": {"router:external": "maybe"}}), 400, "InvalidInput"
    )
