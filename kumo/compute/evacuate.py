"""Evacuate (Nova's os-evacuate): rebuild a server on another host, from its image, after its
own host died.

Only when the source's compute service is down (heartbeat too old, or forced down): a host
that is up still runs the guest. The destination goes through the scheduler core with the
source excluded (a named host is checked by it, and claimed), the source's allocations are
released (nothing runs there any more), and the source keeps a `cleanup` task so that, if it
ever comes back, it destroys the guest that moved away (kumo.compute.lifecycle.evacuate decides
all of it; kumo.compute.lifecycle_apply writes it).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import hosts, params, servers
from kumo.compute import lifecycle as lc
from kumo.compute.lifecycle_apply import apply, state_of
from kumo.compute.microversion import Microversion
from kumo.compute.models import ComputeHost
from kumo.compute.node_hosts import BAREMETAL_HYPERVISOR_TYPE, may_be_node
from kumo.compute.scheduling import claim_destination
from kumo.errors import BadRequest, NotFound
from kumo.placement import claims

# 2.14 drops onSharedStorage (and the adminPass in the answer); 2.29 adds force, 2.68 removes
# it; from 2.95 the evacuated server is left stopped.
NO_SHARED_STORAGE_VERSION = "2.14"
FORCE_VERSION = "2.29"
NO_FORCE_VERSION = "2.68"
STOPPED_VERSION = "2.95"


@dataclass(frozen=True)
class EvacuateRequest:
    """`force` (2.29) is accepted as Nova's; a named host is checked and claimed through the
    scheduler core either way, so capacity is never over-committed by a forced evacuation."""

    host: str | None = None
    admin_pass: str | None = None
    on_shared_storage: bool = False
    force: bool = False
    stopped: bool = False  # 2.95: the server ends SHUTOFF whatever its state before


def parse(body: object, version: Microversion) -> EvacuateRequest:
    """The `evacuate` body of `version` (Nova's schemas: onSharedStorage required before 2.14)."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid input for field/attribute evacuate. Value must be an object.")
    allowed = {"host", "adminPass"}
    if version.before(NO_SHARED_STORAGE_VERSION):
        allowed.add("onSharedStorage")
        if "onSharedStorage" not in body:
            raise BadRequest(
                "Invalid input for field/attribute evacuate. 'onSharedStorage' is a required property"
            )
    if version.at_least(FORCE_VERSION) and version.before(NO_FORCE_VERSION):
        allowed.add("force")
    params.reject_unknown(body, allowed, "evacuate")
    host = params.host_value(body.get("host"))  # Nova's hostname pattern, as migrate's
    admin_pass = body.get("adminPass")
    if admin_pass is not None and not isinstance(admin_pass, str):
        raise BadRequest(f"Invalid input for field/attribute adminPass. Value: {admin_pass!r}.")
    shared = params.lenient_bool(body.get("onSharedStorage", False))
    if shared and admin_pass is not None:
        raise BadRequest("admin password can't be changed on existing disk")
    force = params.strict_bool(body["force"], "force") if "force" in body else False
    if force and host is None:
        raise BadRequest("Can't force to a non-provided destination")
    return EvacuateRequest(
        host=host,
        admin_pass=admin_pass,
        on_shared_storage=shared,
        force=force,
        stopped=version.at_least(STOPPED_VERSION),
    )


def evacuate(session: Session, ctx: RequestContext, server_id: str, req: EvacuateRequest) -> str:
    """Start rebuilding the server on another host; returns that host (its agent to wake)."""
    ctx.require_admin()
    instance = servers.get(session, ctx, server_id, for_update=True)
    state = state_of(instance)
    source = lc.evacuation_source(state)
    _refuse_baremetal(session, source)
    if req.host is not None:
        if req.host == source:
            raise BadRequest("The target host can't be the same one.")
        if session.scalar(select(ComputeHost.id).where(ComputeHost.name == req.host)) is None:
            raise NotFound(f"Compute host {req.host} not found.")
    lc.allowed(state, "evacuate")
    if hosts.host_is_up(session, source):
        raise BadRequest(f"Compute service of {source} is still in use.")
    # An ERROR server may still hold the source's share of a failed earlier move (a failed
    # resize revert keeps both claims). Nothing of it runs anywhere but on the dead host, and the
    # evacuation releases that consumer anyway: it goes first, so the move can take its place.
    claims.release(session, lc.migration_consumer(instance.uuid))
    dest = claim_destination(session, instance, req.host, move="evacuation")
    apply(session, instance, lc.evacuate(state, dest, stop_after=req.stopped), ctx)
    return dest


def _refuse_baremetal(session: Session, host: str) -> None:
    kind = session.scalar(select(ComputeHost.hypervisor_type).where(ComputeHost.name == host))
    if may_be_node(host) or kind == BAREMETAL_HYPERVISOR_TYPE:
        raise BadRequest("Baremetal servers cannot be evacuated: a physical machine cannot move.")
