"""Starting a server's move: cold and live migration, and resize confirm / revert (a cold
migration leaves the server RESIZED on its destination until confirmed or reverted).

A move's destination is claimed when it starts, so capacity is never double-booked while the
guest moves; every state change is kumo.compute.lifecycle's (request_move, revert_resize,
confirm_resize, and the results in settled), written by kumo.compute.lifecycle_apply.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import lifecycle as lc
from kumo.compute import quotas, servers
from kumo.compute.lifecycle_apply import apply, state_of
from kumo.compute.scheduling import claim_destination
from kumo.compute.server_ops import woken
from kumo.errors import BadRequest, NotFound


def migrate(session: Session, ctx: RequestContext, server_id: str, live: bool, dest_host: str | None) -> str:
    """Admin: move to another host. The destination is claimed now (by the scheduler core when
    no host is named) so capacity can never be double-booked during the move. A named host that
    does not exist is bad input here (400, as Nova's migrate and os-migrateLive answer), where
    evacuate answers 404."""
    ctx.require_admin()
    instance = servers.get(session, ctx, server_id)
    try:
        dest = claim_destination(session, instance, dest_host)
    except NotFound as missing:
        raise BadRequest(missing.message) from None
    kind = "live_migrate" if live else "migrate"
    change = lc.request_move(state_of(instance), kind, dest, is_admin=ctx.is_admin)
    apply(session, instance, change, ctx)
    return dest


def confirm_resize(session: Session, ctx: RequestContext, server_id: str) -> None:
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id)
    apply(session, instance, lc.confirm_resize(state_of(instance)), ctx)


def revert_resize(session: Session, ctx: RequestContext, server_id: str) -> str:
    """Back to the old flavor on the source: refused for the state (409) first, then (403)
    when the old flavor's cores and RAM above the current one's exceed the project's quota
    (counted under the project's quota lock, as a resize's growth is)."""
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id, for_update=True)
    change = lc.revert_resize(state_of(instance), is_admin=ctx.is_admin)  # pure: nothing applied yet
    old, current = instance.old_flavor or {}, instance.flavor or {}
    quotas.check_instance_quota(
        session,
        instance.project_id,
        0,
        max(0, int(old.get("vcpus") or 0) - int(current.get("vcpus") or 0)),
        max(0, int(old.get("ram") or 0) - int(current.get("ram") or 0)),
    )
    return woken(apply(session, instance, change, ctx).wake)
