"""os-kumo-host-labels (a kumo extension): each host's failure-domain labels, rack and region,
beside its availability zone. Admin only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import hosts, schemas
from kumo.runtime import Runtime

router = APIRouter(prefix="/compute")


def _view(labels: hosts.HostLabels) -> dict[str, Any]:
    return {
        "host": labels.host,
        "rack": labels.rack,
        "region": labels.region,
        "availability_zone": labels.availability_zone,
    }


@router.get("/v2.1/os-kumo-host-labels")
def list_host_labels(
    ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        return {"host_labels": [_view(h) for h in hosts.list_labels(session, ctx)]}


@router.put("/v2.1/os-kumo-host-labels/{host_name}", openapi_extra=json_body(schemas.HOST_LABELS))
def update_host_labels(
    host_name: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    ctx.require_admin()
    labels = hosts.parse_labels(body)
    with rt.db.transaction() as session:
        return {"host_labels": _view(hosts.update_labels(session, ctx, host_name, labels))}
