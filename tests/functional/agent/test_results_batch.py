"""A batch of agents' results in which one cannot be applied (issue 15): the others are applied,
the one fails its own task and server, and the batch is accepted (the agent has nothing to
resend). Through the real internal API, with no agent running: this test plays the agent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import exc, select

from kumo.agent import service
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.compute import server_ops
from kumo.compute.lifecycle_apply import spec
from kumo.compute.models import Instance
from kumo.work import queue
from kumo.work.kinds import AbortMigrationPayload, AnyPayload, CleanupPayload, TaskKind
from kumo.work.models import Task
from tests.conftest import Cloud, wait_for
from tests.functional.compute.helpers import add_instance, database, project_id, register_hosts
from tests.functional.helpers import make_flavor, upload_image

API = "/compute/v2.1"
HOST = "h1"
# A power state no column holds: SQLite refuses more than 64 bits, PostgreSQL more than 32.
UNSTORABLE = 2**70


def _agent(cloud: Cloud) -> httpx.Client:
    token = cloud.settings.secret("agent_token")
    return httpx.Client(base_url=f"{cloud.url}/internal/v1", headers={AGENT_TOKEN_HEADER: token}, timeout=30)


def _register(agent: httpx.Client) -> None:
    """HOST reports itself, as its agent does on start."""
    report = {"name": HOST, "vcpus": 8, "memory_mb": 16384, "disk_gb": 100}
    assert agent.post("/hosts", json=report).status_code == 204


def _boot(c: httpx.Client, names: list[str]) -> dict[str, str]:
    flavor, image = make_flavor(c, "f"), upload_image(c, name="i", content=b"x" * 64)
    created = {}
    for name in names:
        body = {
            "server": {
                "name": name,
                "flavorRef": flavor,
                "imageRef": image,
                "networks": "none",
            }
        }
        resp = c.post(f"{API}/servers", json=body)
        assert resp.status_code == 202, resp.text
        created[resp.json()["server"]["id"]] = name
    return created


def _spawn_tasks(agent: httpx.Client, count: int) -> list[dict[str, Any]]:
    def poll() -> list[dict[str, Any]] | None:
        tasks = agent.post(f"/hosts/{HOST}/tasks/poll", json={"wait": 0}).json()["tasks"]
        return tasks if len(tasks) == count else None

    return list(wait_for(poll))


def _results_poisoning(tasks: list[dict[str, Any]], names: dict[str, str]) -> list[dict[str, Any]]:
    """Every spawn done; the server named "poisoned" with a power state no column holds."""
    return [
        {
            "task_id": t["id"],
            "ok": True,
            "power_state": UNSTORABLE if names[t["instance_uuid"]] == "poisoned" else 1,
        }
        for t in tasks
    ]


def _a_result_that_cannot_be_applied_fails_alone(cloud: Cloud) -> None:
    with _agent(cloud) as agent, cloud.client() as c:
        _register(agent)
        names = _boot(c, ["first", "poisoned", "last"])
        tasks = _spawn_tasks(agent, 3)
        results = _results_poisoning(tasks, names)
        resp = agent.post("/tasks/results", json={"results": results})
        assert resp.status_code == 204, resp.text
        servers = {s["name"]: s for s in c.get(f"{API}/servers/detail").json()["servers"]}
        assert servers["first"]["status"] == servers["last"]["status"] == "ACTIVE"
        assert servers["poisoned"]["status"] == "ERROR"
        fault = servers["poisoned"]["fault"]["message"]
        assert fault.startswith("Applying the task's result failed: ")
        assert "[SQL" not in fault and str(UNSTORABLE) not in fault  # no statement, no values
        assert servers["poisoned"]["OS-EXT-STS:task_state"] is None
        # Nothing is left pending for the agent to run or report again.
        assert agent.post(f"/hosts/{HOST}/tasks/poll", json={"wait": 0}).json()["tasks"] == []
        # A result for a task no longer known does not stop the batch either.
        again = [{"task_id": "no-such-task", "ok": True}, *results]
        assert agent.post("/tasks/results", json={"results": again}).status_code == 204


def test_a_result_that_cannot_be_applied_fails_alone_sqlite(cloud: Cloud) -> None:
    _a_result_that_cannot_be_applied_fails_alone(cloud)


def test_a_result_that_cannot_be_applied_fails_alone_postgres(pg_cloud: Cloud) -> None:
    _a_result_that_cannot_be_applied_fails_alone(pg_cloud)


@pytest.mark.parametrize("batch", [1, 2])
def test_a_database_error_refuses_the_batch(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """The database's own trouble marks no task failed: the batch is refused (5xx), to be resent."""

    def unavailable(*args: Any, **kw: Any) -> None:
        raise exc.OperationalError("UPDATE", {}, ConnectionError("server closed the connection"))

    with _agent(cloud) as agent, cloud.client() as c:
        _register(agent)
        _boot(c, [f"vm-{i}" for i in range(batch)])
        tasks = _spawn_tasks(agent, batch)
        monkeypatch.setattr(service, "complete", unavailable)
        results = [{"task_id": t["id"], "ok": True, "power_state": 1} for t in tasks]
        assert agent.post("/tasks/results", json={"results": results}).status_code >= 500
        monkeypatch.undo()
        assert len(agent.post(f"/hosts/{HOST}/tasks/poll", json={"wait": 0}).json()["tasks"]) == batch
        assert {s["status"] for s in c.get(f"{API}/servers/detail").json()["servers"]} == {"BUILD"}


def test_a_result_whose_server_cannot_even_be_marked_still_leaves_nothing_to_resend(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unmarkable(*args: Any, **kw: Any) -> None:
        raise ValueError("cannot mark this one either")

    monkeypatch.setattr(server_ops, "fail_unsettled", unmarkable)
    with _agent(cloud) as agent, cloud.client() as c:
        _register(agent)
        names = _boot(c, ["first", "poisoned"])
        tasks = _spawn_tasks(agent, 2)
        results = _results_poisoning(tasks, names)
        assert agent.post("/tasks/results", json={"results": results}).status_code == 204
        servers = {s["name"]: s for s in c.get(f"{API}/servers/detail").json()["servers"]}
        assert servers["first"]["status"] == "ACTIVE"
        assert agent.post(f"/hosts/{HOST}/tasks/poll", json={"wait": 0}).json()["tasks"] == []


@pytest.mark.parametrize("kind", ["cleanup", "abort_migration"])
def test_a_clean_up_that_cannot_be_applied_leaves_its_server_alone(cloud: Cloud, kind: str) -> None:
    """A dead host's `cleanup` (its server was evacuated and lives elsewhere now) or a
    destination's `abort_migration` whose result cannot be applied fails alone: as settle, it
    changes no server, and the server stays ACTIVE where it is."""
    register_hosts(cloud, "old-host", "new-host")
    with cloud.client() as c:
        project = project_id(c, "admin")
    instance_uuid = add_instance(cloud, "new-host", project)
    db = database(cloud)
    try:
        with db.transaction() as s:
            instance = s.scalar(select(Instance).where(Instance.uuid == instance_uuid))
            assert instance is not None
            payload: AnyPayload = (
                CleanupPayload(spec(instance), "evacuated to new-host")
                if kind == TaskKind.CLEANUP
                else AbortMigrationPayload(spec(instance), "old-host")
            )
            task_id = queue.enqueue(s, "old-host", TaskKind(kind), instance_uuid, payload, None).id
        with db.transaction() as s:
            server_ops.fail_unsettled(s, task_id, "Applying the task's result failed: boom")
        with db.read() as s:
            task = s.get(Task, task_id)
            assert task is not None and task.state == "failed"
            instance = s.scalar(select(Instance).where(Instance.uuid == instance_uuid))
            assert instance is not None
            assert (instance.vm_state, instance.fault, instance.host) == ("active", None, "new-host")
    finally:
        db.dispose()
