"""Reporting results (kumo.agent.link): a batch the API refuses as a whole is reported result by
result; a result refused alone, or that cannot be sent, is replaced by a failure that says so;
the report loop never stops on a refusal and never resends a result forever."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from kumo.agent.link import REFUSED, ApiLink
from kumo.agent.protocol import TaskOut, TaskResult


class ResultsAPI:
    """Refuses (413) any report of more than one result, and (422) any result with details."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.accepted: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def handle(self, request: httpx.Request) -> httpx.Response:
        results = json.loads(request.content)["results"]
        with self.lock:
            self.calls.append(results)
            if len(results) > 1:
                return httpx.Response(413)
            if results[0]["details"]:
                return httpx.Response(422)
            self.accepted.extend(results)
        return httpx.Response(204)


def _task(n: int) -> TaskOut:
    return TaskOut(id=f"t{n}", kind="spawn", instance_uuid=f"i{n}", payload={}, request_id=None)


def test_a_refused_batch_is_reported_result_by_result() -> None:
    api = ResultsAPI()
    link = ApiLink("http://api", "token", 1.0, 10, transport=httpx.MockTransport(api.handle))
    batch = [
        (_task(1), TaskResult(ok=True, power_state=1)),
        (_task(2), TaskResult(ok=False, error="boom", details={"traceback": "..."})),
        (_task(3), TaskResult(ok=True, details={"answer": object()})),  # no JSON
        (_task(4), TaskResult(ok=True, power_state=1)),
    ]
    link._report(batch)
    accepted = {r["task_id"]: r for r in api.accepted}
    assert set(accepted) == {"t1", "t2", "t3", "t4"}
    assert accepted["t1"]["ok"] is True and accepted["t4"]["ok"] is True
    assert accepted["t2"]["ok"] is False and accepted["t2"]["error"] == f"{REFUSED} (422): boom"
    assert accepted["t3"]["ok"] is False and accepted["t3"]["error"].startswith(f"{REFUSED} (TypeError: ")


def test_the_report_loop_goes_on_after_a_refusal() -> None:
    def refuse_all(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400)

    link = ApiLink("http://api", "token", 1.0, 10, transport=httpx.MockTransport(refuse_all))
    link._in_flight.add("t1")
    link._results.put((_task(1), TaskResult(ok=True, power_state=1)))
    thread = threading.Thread(target=link._report_loop, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while "t1" not in link._recent and time.monotonic() < deadline:
            time.sleep(0.02)
        assert thread.is_alive()
        assert "t1" in link._recent and "t1" not in link._in_flight  # not resent forever
    finally:
        link.stop_event.set()
        thread.join(5)
