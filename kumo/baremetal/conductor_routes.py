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
    """Register or heartbeat; answers with the live conductors and the nodes `name` owns. Three
    short transactions (register, read, keep the owned hosts up) and the body serialized once:
    10,000 nodes cost a fraction of a second."""
    timeout = rt.settings.heartbeat_timeout_seconds
    with rt.db.transaction() as session:
        live = conductors.register(session, name, timeout)
    with rt.db.read() as session:
        nodes = conductors.owned_nodes(session, name, live)
    with rt.db.transaction() as session:
        conductors.keep_up(session, [n.uuid for n in nodes], timeout)
    answer = ConductorAssignment.model_construct(conductors=live, nodes=nodes)
    return Response(content=answer.model_dump_json(), media_type="application/json")


@router.put("/{name}/power-states", status_code=204)
def power_states(body: PowerStateReport, name: str = Name, rt: Runtime = Depends(agent)) -> Response:
    with rt.db.transaction() as session:
        conductors.report_power_states(session, name, body)
    return Response(status_code=204)
