"""Starting a server's move: cold and live migration, and resize confirm / revert (a cold
migration leaves the server RESIZED on its destination until confirmed or reverted).

A move's destination is claimed when it starts, so capacity is never double-booked while the
guest moves; its results settle in kumo.compute.server_ops (_settle_prepare, _settle_move).
"""

from __future__ import annotations

from functools import partial

from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import actions, servers
from kumo.compute.models import Instance
from kumo.compute.scheduling import claim_destination
from kumo.compute.server_ops import begin
from kumo.compute.servers import migration_consumer
from kumo.compute.states import PowerState, VmState
from kumo.errors import Conflict
from kumo.placement.claims import release
from kumo.work.kinds import PrepareMigrationPayload, TaskKind


def migrate(session: Session, ctx: RequestContext, server_id: str, live: bool, dest_host: str | None) -> str:
    """Admin: move to another host. The destination is claimed now (by the scheduler core when
    no host is named) so capacity can never be double-booked during the move."""
    ctx.require_admin()
    instance = servers.get(session, ctx, server_id)
    dest = claim_destination(session, instance, dest_host)
    kind = "live_migrate" if live else "migrate"
    return _begin_move(session, ctx, instance, kind, dest)


def _begin_move(session: Session, ctx: RequestContext, instance: Instance, kind: str, dest: str) -> str:
    """A move is two tasks: the destination prepares (`prepare_migration`: disks, the domain
    definition, where to send the guest), then, when it reports, the source moves the guest
    there (`kind`, with the destination's answer as `target`; see _settle_prepare). The action's
    event stays open across both and closes with the move's outcome."""
    move = partial(PrepareMigrationPayload, dest=dest, source=instance.host, move=TaskKind(kind))
    return begin(session, ctx, instance, kind, move, host=dest, task_kind=TaskKind.PREPARE_MIGRATION)


def confirm_resize(session: Session, ctx: RequestContext, server_id: str) -> None:
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id)
    if instance.vm_state != VmState.RESIZED:
        raise Conflict(
            f"Cannot 'confirmResize' instance {server_id} while it is in vm_state {instance.vm_state}"
        )
    release(session, migration_consumer(instance.uuid))
    instance.migration_source = None
    instance.vm_state = VmState.ACTIVE if instance.power_state == PowerState.RUNNING else VmState.STOPPED
    actions.record(
        session,
        instance.uuid,
        "confirmResize",
        "compute_confirm_resize",
        ctx.request_id,
        ctx.user_id,
        ctx.project_id,
        host=instance.host,
    )


def revert_resize(session: Session, ctx: RequestContext, server_id: str) -> str:
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id)
    source = instance.migration_source
    if instance.vm_state != VmState.RESIZED or not source:
        raise Conflict(
            f"Cannot 'revertResize' instance {server_id} while it is in vm_state {instance.vm_state}"
        )
    return _begin_move(session, ctx, instance, "revert_resize", source)
