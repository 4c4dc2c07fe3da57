"""GET /compute/v2.1/os-kumo-image-cache/{host}: the host's agent answers with its cache now."""

from __future__ import annotations

import pytest

from kumo.compute import image_cache
from tests.conftest import DEMO_PASSWORD, Cloud, Fleet
from tests.functional.compute.helpers import register_hosts

API = "/compute/v2.1/os-kumo-image-cache"


def test_report_comes_from_the_hosts_agent(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("cache-host")
    with cloud.client() as admin:
        resp = admin.get(f"{API}/cache-host")
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"host": "cache-host", "images": []}  # fake guests need no image
        missing = admin.get(f"{API}/nowhere")
        assert missing.status_code == 404
        assert "nowhere" in missing.json()["itemNotFound"]["message"]
    with cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo")) as member:
        assert member.get(f"{API}/cache-host").status_code == 403


def test_a_host_that_does_not_answer_is_a_409(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    register_hosts(cloud, "silent-host")  # registered, but no agent runs for it
    monkeypatch.setattr(image_cache, "WAIT_SECONDS", 0.5)  # the API runs in this process
    with cloud.client() as admin:
        resp = admin.get(f"{API}/silent-host")
        assert resp.status_code == 409
        assert "did not answer" in resp.json()["conflictingRequest"]["message"]
