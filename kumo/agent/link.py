"""What every worker that takes tasks from the API shares (hypervisor agents, baremetal
conductors): calls to the internal API retried until it answers (it may be restarting) or the
worker stops, the set of tasks running here, and their results reported in batches."""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from typing import Any

import httpx

from kumo.agent.protocol import AGENT_TOKEN_HEADER, TaskOut, TaskResult

log = logging.getLogger("kumo.agent")


class ApiLink:
    def __init__(
        self,
        api_url: str,
        token: str,
        poll_wait: float,
        report_batch: int,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.client = httpx.Client(
            base_url=api_url.rstrip("/") + "/internal/v1",
            headers={AGENT_TOKEN_HEADER: token},
            timeout=httpx.Timeout(poll_wait + 15, connect=5),
            transport=transport,
        )
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._report_batch = report_batch
        self._in_flight: set[str] = set()
        # Results just reported: a poll answered before the API committed one of them may still
        # list it; skip it rather than run it twice.
        self._recent: deque[str] = deque(maxlen=4096)
        self._results: queue.Queue[tuple[TaskOut, TaskResult]] = queue.Queue()

    # -- HTTP with retries: the API may be restarting ----------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        delay = 0.2
        while True:
            try:
                resp = self.client.request(method, path, **kwargs)
                if resp.status_code < 500:
                    resp.raise_for_status()
                    return resp
                log.warning("%s %s answered %s; retrying", method, path, resp.status_code)
            except httpx.TransportError as exc:
                log.warning("%s %s failed (%s); retrying", method, path, exc)
            if self.stop_event.wait(delay):
                raise RuntimeError("stopping")
            delay = min(delay * 2, 5.0)

    # -- results --------------------------------------------------------------------------------
    def _report_loop(self) -> None:
        """Report results in batches: one call and one transaction for all that finished."""
        while not self.stop_event.is_set():
            try:
                batch = [self._results.get(timeout=0.5)]
            except queue.Empty:
                continue
            while len(batch) < self._report_batch:
                try:
                    batch.append(self._results.get_nowait())
                except queue.Empty:
                    break
            body = {"results": [{"task_id": t.id, **r.model_dump()} for t, r in batch]}
            request_id = next((t.request_id for t, _ in batch if t.request_id), None)
            headers = {"X-OpenStack-Request-ID": request_id} if request_id and len(batch) == 1 else {}
            try:
                self._call("POST", "/tasks/results", json=body, headers=headers)
            except RuntimeError:
                return
            with self._lock:
                for task, _ in batch:
                    self._in_flight.discard(task.id)
                    self._recent.append(task.id)
