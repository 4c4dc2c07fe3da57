"""Internal HTTP API for baremetal conductors (/internal/v1/conductors), behind the agents'
shared token. Work and results go through the agents' fleet poll (kumo/agent/routes.py)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Response

from kumo.agent.routes import agent
from kumo.baremetal import conductors
from kumo.baremetal.protocol import ConductorAssignment, ConductorHeartbeat, PowerStateReport
from kumo.runtime import Runtime

router = APIRouter(prefix="/internal/v1/conductors")
Name = Path(min_length=1, max_length=255)


@router.put("/{name}", response_model=ConductorAssignment)
def heartbeat(body: ConductorHeartbeat, name: str = Name, rt: Runtime = Depends(agent)) -> Response:
    """Register or heartbeat; answers with the live conductors and the nodes `name` owns, or
    "unchanged" when the version it holds is current. Short transactions (register; read the
    nodes written since the last heartbeat, and every node only when the answer carries them;
    keep the nodes' hosts up, when a quarter of the timeout old), the body serialized once."""
    timeout = rt.settings.heartbeat_timeout_seconds
    with rt.db.transaction() as session:
        live = conductors.register(session, name, timeout)
    with rt.db.read() as session:
        answer = conductors.assignment(session, name, live, body.assignment)
        due = conductors.keep_up_due(session, timeout)
    if due:
        with rt.db.transaction() as session:
            conductors.keep_up(session, timeout)
    return Response(content=answer.model_dump_json(), media_type="application/json")


@router.put("/{name}/power-states", status_code=204)
def power_states(body: PowerStateReport, name: str = Name, rt: Runtime = Depends(agent)) -> Response:
    with rt.db.transaction() as session:
        conductors.report_power_states(session, name, body)
    return Response(status_code=204)
