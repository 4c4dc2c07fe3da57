"""A task whose driver misbehaves fails alone (issue 15): a spawn that raises something other
than a DriverError, or that answers with no power state, puts that server in ERROR with a fault
naming the error, while the servers beside it on the same agent, queued on the same worker,
become ACTIVE and the agent keeps heartbeating."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kumo.agent.agent import Agent
from kumo.agent.drivers.fake import FakeDriver
from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.helpers import make_flavor, upload_image

API = "/compute/v2.1"


class MisbehavingDriver(FakeDriver):
    """The fake driver, except for servers named "poisoned": their spawn raises a bug's
    exception, or answers with a string where a power state belongs."""

    def __init__(self, host: str, misbehaviour: str) -> None:
        super().__init__(host)
        self.misbehaviour = misbehaviour

    def spawn(self, instance: dict[str, Any]) -> int:
        if instance.get("name") == "poisoned":
            if self.misbehaviour == "raises":
                raise KeyError("no such disk bus")
            return "running"  # type: ignore[return-value]  # what a buggy driver may answer
        return super().spawn(instance)


def _server(c: httpx.Client, sid: str) -> dict[str, Any]:
    return dict(c.get(f"{API}/servers/{sid}").json()["server"])


def _boot(c: httpx.Client, name: str, flavor: str, image: str) -> str:
    body = {"server": {"name": name, "flavorRef": flavor, "imageRef": image, "networks": "none"}}
    resp = c.post(f"{API}/servers", json=body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["server"]["id"])


@pytest.mark.parametrize(
    ("misbehaviour", "fault"), [("raises", "KeyError: 'no such disk bus'"), ("answers", "ValidationError")]
)
def test_a_spawn_that_misbehaves_fails_alone(
    cloud: Cloud, fleet: Fleet, misbehaviour: str, fault: str
) -> None:
    # One worker: every task of the agent queues behind the misbehaving one.
    agent = Agent(
        cloud.url,
        "h1",
        MisbehavingDriver("h1", misbehaviour),
        cloud.settings.secret("agent_token"),
        heartbeat_interval=0.2,
        workers=1,
        poll_wait=2.0,
    )
    fleet.agents.append(agent.start())
    with cloud.client() as c:
        flavor_id, image_id = make_flavor(c, "f"), upload_image(c, name="i", content=b"x" * 64)
        poisoned = _boot(c, "poisoned", flavor_id, image_id)
        wait_for(lambda: _server(c, poisoned)["OS-EXT-STS:task_state"] != "scheduling", timeout=10)
        others = [_boot(c, f"vm-{i}", flavor_id, image_id) for i in range(3)]
        for sid in others:
            wait_for(lambda s=sid: _server(c, s)["status"] == "ACTIVE", timeout=10)
        server = wait_for(lambda: (s := _server(c, poisoned))["status"] == "ERROR" and s, timeout=10)
        assert fault in server["fault"]["message"]
        beat = c.get(f"{API}/os-services").json()["services"]
        assert [s["state"] for s in beat if s["host"] == "h1"] == ["up"]
