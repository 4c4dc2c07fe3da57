"""The server page's actions over HTTP (httpx, no browser), on the fake cloud: each offered as
Nova allows it in the server's status (pause/unpause, suspend/resume, rescue/unrescue with an
optional image, resize with confirm and revert, shelve/unshelve, rebuild, create image), each
done through the compute API with the user's token, the page settling (no polling) in each
status it leads to, and an API refusal shown in the API's words."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import DEMO_PASSWORD, Cloud, Fleet, wait_for
from tests.functional.dashboard.test_operator_pages import browser, flash_of, post
from tests.functional.helpers import make_flavor, upload_image

API = "/compute/v2.1"


@pytest.fixture
def demo_server(cloud: Cloud, fleet: Fleet) -> Iterator[tuple[Cloud, str, dict[str, str]]]:
    fleet.add("h1", vcpus=8, memory_mb=8192)
    cloud.settings.shelved_offload_time = -1  # a shelved server stays SHELVED on its host
    with cloud.client() as admin:
        wait_for(lambda: admin.get(f"{API}/os-hypervisors").json()["hypervisors"])
        ids = {
            "small": make_flavor(admin, "act.small"),
            "big": make_flavor(admin, "act.big", vcpus=2, ram=1024),
            "image": upload_image(admin, name="act-img"),
            "rescue": upload_image(admin, name="act-rescue"),
        }
    with _demo(cloud) as demo:
        made = demo.post(
            f"{API}/servers",
            json={
                "server": {
                    "name": "a1",
                    "flavorRef": ids["small"],
                    "imageRef": ids["image"],
                    "networks": "none",
                }
            },
        )
        assert made.status_code == 202, made.text
        sid = made.json()["server"]["id"]
        wait_for(lambda: demo.get(f"{API}/servers/{sid}").json()["server"]["status"] == "ACTIVE")
    yield cloud, sid, ids


def _demo(cloud: Cloud) -> httpx.Client:
    return cloud.client(token=cloud.token("demo", DEMO_PASSWORD, "demo"))


def _status(cloud: Cloud, sid: str) -> str:
    """The server's status, once no task is under way (else "")."""
    with _demo(cloud) as demo:
        server = demo.get(f"{API}/servers/{sid}").json()["server"]
    return "" if server.get("OS-EXT-STS:task_state") else str(server["status"])


def _buttons(page: str) -> set[str]:
    return set(re.findall(r'id="action-([a-z-]+)"', page))


def _act(b: httpx.Client, cloud: Cloud, sid: str, action: str, reaches: str, **form: str) -> str:
    """Press an action on the server's page; wait for the status it leads to; the page then."""
    page = f"/dashboard/servers/{sid}"
    assert action in _buttons(b.get(page).text), (action, _buttons(b.get(page).text))
    assert flash_of(post(b, page, f"{page}/action", {"action": action, **form})) == f"{action}: requested."
    wait_for(lambda: _status(cloud, sid) == reaches, timeout=30)
    shown = b.get(page).text
    assert f'id="status">{reaches}<' in shown, reaches
    assert 'hx-trigger="every 2s"' not in shown, f"{reaches} is settled: the page stops polling"
    return shown


def test_each_action_the_api_supports_is_offered_by_status_and_done(
    demo_server: tuple[Cloud, str, dict[str, str]],
) -> None:
    cloud, sid, ids = demo_server
    with browser(cloud, "demo", DEMO_PASSWORD, "demo") as b:
        active = _buttons(b.get(f"/dashboard/servers/{sid}").text)
        assert {"pause", "suspend", "rescue", "resize", "rebuild", "create-image", "shelve"} <= active
        assert not {"unpause", "resume", "unrescue", "unshelve", "confirm-resize"} & active

        paused = _act(b, cloud, sid, "pause", "PAUSED")
        assert "unpause" in _buttons(paused) and "pause" not in _buttons(paused)
        _act(b, cloud, sid, "unpause", "ACTIVE")

        suspended = _act(b, cloud, sid, "suspend", "SUSPENDED")
        assert "resume" in _buttons(suspended)
        _act(b, cloud, sid, "resume", "ACTIVE")

        rescued = _act(b, cloud, sid, "rescue", "RESCUE", image=ids["rescue"])
        assert _buttons(rescued) == {"unrescue", "lock", "delete"}
        _act(b, cloud, sid, "unrescue", "ACTIVE")
        _act(b, cloud, sid, "rescue", "RESCUE", image="")  # no image chosen: the server's own
        _act(b, cloud, sid, "unrescue", "ACTIVE")

        resized = _act(b, cloud, sid, "resize", "VERIFY_RESIZE", flavor=ids["big"])
        assert {"confirm-resize", "revert-resize"} <= _buttons(resized)
        _act(b, cloud, sid, "revert-resize", "ACTIVE")
        _act(b, cloud, sid, "resize", "VERIFY_RESIZE", flavor=ids["big"])
        _act(b, cloud, sid, "confirm-resize", "ACTIVE")
        with _demo(cloud) as demo:
            flavor = demo.get(f"{API}/servers/{sid}", headers={"X-OpenStack-Nova-API-Version": "2.47"})
            assert flavor.json()["server"]["flavor"]["original_name"] == "act.big"

        _act(b, cloud, sid, "rebuild", "ACTIVE", image=ids["rescue"])
        with _demo(cloud) as demo:
            assert demo.get(f"{API}/servers/{sid}").json()["server"]["image"]["id"] == ids["rescue"]

        _act(b, cloud, sid, "create-image", "ACTIVE", image_name="a1-snap")
        with _demo(cloud) as demo:
            wait_for(
                lambda: any(i["name"] == "a1-snap" for i in demo.get("/image/v2/images").json()["images"])
            )

        shelved = _act(b, cloud, sid, "shelve", "SHELVED")
        assert "unshelve" in _buttons(shelved) and "resize" not in _buttons(shelved)
        _act(b, cloud, sid, "unshelve", "ACTIVE")

        # The API decides: a refusal (here a second unpause of an active server) in its words.
        page = f"/dashboard/servers/{sid}"
        refused = flash_of(post(b, page, f"{page}/action", {"action": "unpause"}))
        assert refused.startswith("409: ") and "unpause" in refused, refused
        bad = flash_of(post(b, page, f"{page}/action", {"action": "resize", "flavor": "no-such-flavor"}))
        assert bad.startswith("400: ") or bad.startswith("404: "), bad
