"""The agent's createImage and shelve tasks over a stand-in API: the guest's disk is streamed
into the image's data, a run after a restart does not upload twice nor fail on a guest its
earlier run offloaded, and a refused upload fails the task with the API's reason."""

from __future__ import annotations

import httpx
import pytest

from kumo.agent.agent import Agent, run_task
from kumo.agent.drivers.fake import SNAPSHOT_CHUNK, SNAPSHOT_CHUNKS, FakeDriver
from kumo.agent.protocol import TaskOut, TaskResult
from kumo.compute.states import PowerState

UUID = "6f1ab1d4-4c59-4f3c-9b0c-2f0b6ad0a0d2"
IMAGE = "0b9c1a52-58a3-4b1e-a2a7-5b8f1f6d9e01"


class StandIn:
    """The internal API's image routes: an image's status, and the uploads it received."""

    def __init__(self, status: str | None, upload_status: int = 204) -> None:
        self.status, self.upload_status = status, upload_status
        self.uploads: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == f"/internal/v1/images/{IMAGE}":
            if self.status is None:
                return httpx.Response(404, json={"itemNotFound": {"code": 404}})
            return httpx.Response(200, json={"id": IMAGE, "status": self.status})
        if request.method == "PUT" and request.url.path == f"/internal/v1/images/{IMAGE}/file":
            assert "content-length" not in request.headers  # streamed, chunked
            self.uploads.append(request.read())
            if self.upload_status == 204:
                self.status = "active"
                return httpx.Response(204)
            return httpx.Response(self.upload_status, json={"conflict": {"message": "already saving"}})
        return httpx.Response(500)


def _agent(api: StandIn) -> tuple[Agent, FakeDriver]:
    driver = FakeDriver("snap-host")
    agent = Agent("http://api.invalid", "snap-host", driver, "token")
    agent.client = httpx.Client(base_url="http://api.invalid/internal/v1", transport=httpx.MockTransport(api))
    driver.spawn({"uuid": UUID})
    return agent, driver


def _run(agent: Agent, kind: str, offload: bool = False) -> TaskResult:
    payload = {
        "action_id": 1,
        "event_id": 2,
        "instance": {"uuid": UUID},
        "image_id": IMAGE,
        "offload": offload,
    }
    task = TaskOut(id="t-1", kind=kind, instance_uuid=UUID, payload=payload, request_id=None)
    return run_task(agent.driver, task, agent._roles)


def test_a_snapshot_streams_the_disk_into_the_queued_image() -> None:
    api = StandIn("queued")
    agent, _ = _agent(api)
    result = _run(agent, "snapshot")
    assert result.ok and result.power_state == int(PowerState.RUNNING)
    (data,) = api.uploads
    assert len(data) == SNAPSHOT_CHUNKS * SNAPSHOT_CHUNK and data.startswith(f"fake disk of {UUID}".encode())
    assert _run(agent, "snapshot").ok and len(api.uploads) == 1  # run again: already uploaded


@pytest.mark.parametrize(("status", "upload", "error"), [(None, 204, "was deleted"), ("queued", 409, "409")])
def test_a_snapshot_fails_with_the_reason(status: str | None, upload: int, error: str) -> None:
    agent, _ = _agent(StandIn(status, upload))
    result = _run(agent, "snapshot")
    assert not result.ok and error in str(result.error)


def test_shelve_with_offload_and_its_run_after_a_restart() -> None:
    api = StandIn("queued")
    agent, driver = _agent(api)
    result = _run(agent, "shelve", offload=True)
    assert result.ok and result.power_state == int(PowerState.NOSTATE)
    assert UUID not in driver.power_states() and len(api.uploads) == 1
    again = _run(agent, "shelve", offload=True)  # the report was lost: the task comes back
    assert again.ok and again.power_state == int(PowerState.NOSTATE) and len(api.uploads) == 1


def test_shelve_without_offload_keeps_the_guest_shut_off() -> None:
    agent, driver = _agent(StandIn("queued"))
    result = _run(agent, "shelve")
    assert result.ok and result.power_state == int(PowerState.SHUTDOWN)
    assert driver.power_states()[UUID] == int(PowerState.SHUTDOWN)


def test_without_the_agent_a_snapshot_cannot_upload() -> None:
    driver = FakeDriver("bare")
    task = TaskOut(id="t", kind="snapshot", instance_uuid=UUID, payload={"image_id": IMAGE}, request_id=None)
    assert run_task(driver, task) == TaskResult(ok=False, error="this agent cannot upload images")
