"""The dashboard's one-call forms on a thing its path names (kumo/dashboard/routes.py `on_form`
and `deleting`), over HTTP (httpx, no browser): deleting a key pair, a network, a server group
and a security group rule, and adding a rule, each says what it did and changes the cloud; a
refusal of the API comes back as an error on the page the form was on; a form without its CSRF
token is refused (403) and deletes nothing."""

from __future__ import annotations

from tests.conftest import ADMIN_PASSWORD, Cloud
from tests.functional.dashboard.test_operator_pages import API, browser, csrf_of, flash_of, post

NETWORK = "/networking/v2.0"


def test_delete_forms_delete_what_their_path_names(cloud: Cloud) -> None:
    with cloud.client(microversion="2.64") as c:  # a server group's `policy`: 2.64
        made = c.post(f"{API}/os-keypairs", json={"keypair": {"name": "dash-key"}})
        assert made.status_code in (200, 201), made.text
        net = c.post(f"{NETWORK}/networks", json={"network": {"name": "dash-net"}}).json()["network"]
        group = c.post(
            f"{API}/os-server-groups", json={"server_group": {"name": "dash-sg", "policy": "anti-affinity"}}
        ).json()["server_group"]
    with browser(cloud, "admin", ADMIN_PASSWORD, "admin") as b:
        gone = post(b, "/dashboard/keypairs", "/dashboard/keypairs/dash-key/delete", {})
        assert flash_of(gone) == "Key pair dash-key deleted."
        gone = post(b, "/dashboard/networks", f"/dashboard/networks/{net['id']}/delete", {})
        assert flash_of(gone) == "Network deleted."
        gone = post(b, "/dashboard/server-groups", f"/dashboard/server-groups/{group['id']}/delete", {})
        assert flash_of(gone) == "Server group deleted."
        again = post(b, "/dashboard/networks", f"/dashboard/networks/{net['id']}/delete", {})
        assert flash_of(again).startswith("404: "), again
    with cloud.client() as c:
        assert c.get(f"{API}/os-keypairs/dash-key").status_code == 404
        assert c.get(f"{NETWORK}/networks/{net['id']}").status_code == 404
        assert c.get(f"{API}/os-server-groups/{group['id']}").status_code == 404


def test_rule_forms_add_and_delete_a_security_group_rule(cloud: Cloud) -> None:
    with cloud.client() as c:
        sg = c.post(f"{NETWORK}/security-groups", json={"security_group": {"name": "dash-web"}})
        group_id = sg.json()["security_group"]["id"]
    with browser(cloud, "admin", ADMIN_PASSWORD, "admin") as b:
        form = {"protocol": "tcp", "port_min": "8080", "remote_ip_prefix": "10.0.0.0/8"}
        added = post(b, "/dashboard/networks", f"/dashboard/security-groups/{group_id}/rules", form)
        assert flash_of(added) == "Rule added."
        with cloud.client() as c:
            rules = c.get(f"{NETWORK}/security-group-rules", params={"security_group_id": group_id}).json()
        (rule,) = [r for r in rules["security_group_rules"] if r["port_range_min"] == 8080]
        assert (rule["port_range_max"], rule["remote_ip_prefix"]) == (8080, "10.0.0.0/8")
        gone = post(b, "/dashboard/networks", f"/dashboard/security-group-rules/{rule['id']}/delete", {})
        assert flash_of(gone) == "Rule deleted."
    with cloud.client() as c:
        assert c.get(f"{NETWORK}/security-group-rules/{rule['id']}").status_code == 404


def test_delete_forms_without_their_csrf_token_are_refused(cloud: Cloud) -> None:
    with cloud.client() as c:
        net = c.post(f"{NETWORK}/networks", json={"network": {"name": "kept"}}).json()["network"]
    with browser(cloud, "admin", ADMIN_PASSWORD, "admin") as b:
        csrf_of(b.get("/dashboard/networks").text)  # the page has a token; the forms below omit it
        refused = b.post(f"/dashboard/networks/{net['id']}/delete", data={})
        assert refused.status_code == 403, refused.text[:300]
        forged = b.post(f"/dashboard/networks/{net['id']}/delete", data={"csrf_token": "forged"})
        assert forged.status_code == 403
    with cloud.client() as c:
        assert c.get(f"{NETWORK}/networks/{net['id']}").status_code == 200
