"""Internal HTTP API for agents (/internal/v1). Authenticated by the shared agent token."""

from __future__ import annotations

import hmac

import anyio
from fastapi import APIRouter, Depends, Request, Response

from kumo.agent import service
from kumo.agent.protocol import (
    AGENT_TOKEN_HEADER,
    HostReport,
    Poll,
    PowerStates,
    TaskList,
    TaskReports,
)
from kumo.agent.tasks import host_key
from kumo.api.deps import runtime
from kumo.compute import hosts
from kumo.errors import Unauthorized
from kumo.runtime import Runtime

router = APIRouter(prefix="/internal/v1")
MAX_WAIT_SECONDS = 30.0


async def agent(request: Request, rt: Runtime = Depends(runtime)) -> Runtime:
    presented = request.headers.get(AGENT_TOKEN_HEADER, "")
    if not hmac.compare_digest(presented.encode(), rt.agent_token.encode()):
        raise Unauthorized("Invalid agent token.")
    return rt


@router.post("/hosts", status_code=204)
def register(report: HostReport, rt: Runtime = Depends(agent)) -> Response:
    with rt.db.transaction() as session:
        service.register(session, report)
    return Response(status_code=204)


@router.put("/hosts/{host}/heartbeat", status_code=204)
def heartbeat(host: str, rt: Runtime = Depends(agent)) -> Response:
    with rt.db.transaction() as session:
        hosts.heartbeat(session, host)
    return Response(status_code=204)


@router.post("/hosts/{host}/tasks/poll")
async def work(host: str, poll: Poll, rt: Runtime = Depends(agent)) -> TaskList:
    """Long poll: answer at once when work other than `busy` is pending, else when woken or
    after `wait` seconds."""
    wait = min(poll.wait, MAX_WAIT_SECONDS)
    key = host_key(host)
    while True:
        seen = rt.waker.seq(key)
        found = await anyio.to_thread.run_sync(_pending, rt, host, poll.busy)
        if found.tasks or wait <= 0:
            return found
        step = min(wait, 2.0)  # re-read the database now and then: wake-ups are a hint
        wait -= step
        await anyio.to_thread.run_sync(rt.waker.wait, key, seen, step, abandon_on_cancel=True)


def _pending(rt: Runtime, host: str, busy: list[str]) -> TaskList:
    with rt.db.read() as session:
        return TaskList(tasks=service.pending_work(session, host, busy))


@router.post("/tasks/results", status_code=204)
def results(body: TaskReports, rt: Runtime = Depends(agent)) -> Response:
    with rt.db.transaction() as session:
        for report in body.results:
            service.complete(session, report.task_id, report)
    return Response(status_code=204)


@router.put("/hosts/{host}/power-states", status_code=204)
def power_states(host: str, body: PowerStates, rt: Runtime = Depends(agent)) -> Response:
    with rt.db.transaction() as session:
        service.sync_power_states(session, host, body)
    return Response(status_code=204)
