"""os-getConsoleOutput over the API with a fake agent: the request reaches the instance's host
and comes back; bad input is a 400, a host that does not answer a 409. (Real consoles:
tests/integration/libvirt.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kumo.compute import console
from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.helpers import add_instance, register_hosts


def _boot(c: httpx.Client) -> str:
    flavor = c.post(
        "/compute/v2.1/flavors", json={"flavor": {"name": "t1", "vcpus": 1, "ram": 256, "disk": 1}}
    )
    image = c.post(
        "/image/v2/images",
        json={"name": "img", "disk_format": "raw", "container_format": "bare", "visibility": "public"},
    ).json()
    c.put(
        f"/image/v2/images/{image['id']}/file",
        content=b"x" * 4096,
        headers={"Content-Type": "application/octet-stream"},
    )
    body = {
        "name": "vm",
        "flavorRef": flavor.json()["flavor"]["id"],
        "imageRef": image["id"],
        "networks": "none",
    }
    resp = c.post(
        "/compute/v2.1/servers", json={"server": body}, headers={"OpenStack-API-Version": "compute 2.37"}
    )
    sid = str(resp.json()["server"]["id"])
    wait_for(lambda: c.get(f"/compute/v2.1/servers/{sid}").json()["server"]["status"] == "ACTIVE")
    return sid


def _console(c: httpx.Client, sid: str, args: Any) -> httpx.Response:
    return c.post(f"/compute/v2.1/servers/{sid}/action", json={"os-getConsoleOutput": args})


def test_console_output_comes_from_the_agent(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("h1")
    with cloud.client() as c:
        sid = _boot(c)
        # a fake guest's console reads as a boot: more than 3 lines, the test image's boot
        # marker (from its flavor) last
        whole = _console(c, sid, {}).json()["output"]
        assert len(whole.split("\n")) > 3, whole
        assert whole.splitlines()[-1].startswith("KUMO-BOOT-OK ") and " vcpus=1 " in whole
        for args in ({"length": -1}, {"length": None}, {"length": 1000}):
            resp = _console(c, sid, args)
            assert resp.status_code == 200 and resp.json()["output"] == whole, resp.text
        # `length` keeps that many parts of the log split at newlines, from its end, as Nova's
        # _tail_log (tempest counts output.split("\n")): the marker's line and the empty part after it
        for args, parts in (({"length": 3}, 3), ({"length": "5"}, 5), ({"length": 2}, 2)):
            output = _console(c, sid, args).json()["output"]
            assert output == "\n".join(whole.split("\n")[-parts:]), output
            assert len(output.split("\n")) == parts
        assert _console(c, sid, {"length": 2}).json()["output"].startswith("KUMO-BOOT-OK ")
        resp = _console(c, sid, {"length": 0})
        assert resp.status_code == 200 and resp.json() == {"output": ""}


@pytest.mark.parametrize(
    "args", [{"length": -2}, {"length": "ten"}, {"length": 1.5}, {"length": True}, {"lines": 3}, "all"]
)
def test_bad_length_is_400(cloud: Cloud, args: Any) -> None:
    register_hosts(cloud, "h1")
    with cloud.client() as c:
        project = c.get("/identity/v3/auth/projects").json()["projects"][0]["id"]
        sid = add_instance(cloud, "h1", project)
        assert _console(c, sid, args).status_code == 400


def test_unknown_server_is_404_and_silent_host_is_409(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "WAIT_SECONDS", 0.5)
    register_hosts(cloud, "h1")  # a host row, but no agent answers for it
    with cloud.client() as c:
        assert _console(c, "00000000-0000-0000-0000-000000000000", {}).status_code == 404
        project = c.get("/identity/v3/auth/projects").json()["projects"][0]["id"]
        sid = add_instance(cloud, "h1", project)
        resp = _console(c, sid, {})
        assert resp.status_code == 409, resp.text
        assert "did not answer" in resp.text
