"""Small Nova behaviours the public tempest suite checks: the adminPass asked for at create is
the one answered, accessIPv6 is normalized as Nova stores it, and every version document's self
link can be followed."""

from __future__ import annotations

import httpx

from tests.conftest import Cloud
from tests.functional.compute.helpers import API
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
