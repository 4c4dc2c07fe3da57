"""What every worker that takes tasks from the API shares (hypervisor agents, baremetal
conductors): calls to the internal API retried until it answers (it may be restarting) or the
worker stops, the set of tasks running here, and their results reported in batches."""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from collections import deque
from typing import Any

import httpx

from kumo.agent.protocol import AGENT_TOKEN_HEADER, TaskOut, TaskResult

log = logging.getLogger("kumo.agent")
REFUSED = "The API refused the task's result"


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
            try:
                self._report(batch)
            except RuntimeError:
                return
            with self._lock:
                for task, _ in batch:
                    self._in_flight.discard(task.id)
                    self._recent.append(task.id)

    def _report(self, batch: list[tuple[TaskOut, TaskResult]]) -> None:
        """Report a batch. The API settles each result alone (one that cannot be applied fails
        its own task), so a batch is refused (4xx) only as a whole (too large, say), or cannot
        be sent (a driver's answer that is no JSON): then each result is reported on its own,
        and one refused alone is replaced by a failure that says so, never resent forever nor
        allowed to stop the reports."""
        try:
            self._post_results(batch)
            return
        except httpx.HTTPStatusError as exc:
            status = str(exc.response.status_code)
        except (TypeError, ValueError) as exc:  # a driver's answer that is no JSON
            status = f"{type(exc).__name__}: {exc}"
        log.error("%d results refused (%s)", len(batch), status)
        if len(batch) > 1:
            for one in batch:
                self._report([one])
            return
        task, result = batch[0]
        if (result.error or "").startswith(REFUSED):
            log.error("task %s: even its failure was refused; it stays pending", task.id)
            return
        refused = f"{REFUSED} ({status}): {result.error or ''}"
        self._report([(task, TaskResult(ok=False, error=refused[:1000]))])

    def _post_results(self, batch: list[tuple[TaskOut, TaskResult]]) -> None:
        body = {"results": [{"task_id": t.id, **r.model_dump()} for t, r in batch]}
        request_id = next((t.request_id for t, _ in batch if t.request_id), None)
        headers = {"X-OpenStack-Request-ID": request_id} if request_id and len(batch) == 1 else {}
        self._call("POST", "/tasks/results", json=body, headers=headers)


def crashed(task: TaskOut, error: Exception) -> TaskResult:
    """The result of a task whose running raised something unexpected (a bug of the driver's or
    of ours): failed, with the error and its traceback, for the task's own server alone."""
    log.error("task %s (%s) crashed", task.id, task.kind, exc_info=error)
    return TaskResult(
        ok=False,
        error=f"{type(error).__name__}: {error}",
        details={"traceback": "".join(traceback.format_exception(error))},
    )
