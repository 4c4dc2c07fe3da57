"""createImage (a server's snapshot), createBackup (a rotating backup), shelve, shelveOffload
and unshelve.

A snapshot or a shelve makes a queued Glance image owned by the server's project and hands
the server's host a task that uploads the guest's root disk into it (streamed over the
internal API: kumo.agent.routes). A shelved server keeps its guest (powered off) and its
allocations until offloaded: at once when `shelved_offload_time` is 0, after that many seconds
otherwise (offload_due, run by the API workers' loop), never when -1, or on shelveOffload.
An offloaded server has no host and no allocations; unshelving it makes it pending scheduling
again (the normal scheduling path), and it is spawned from its shelve snapshot, which is
deleted once it runs (kumo.compute.lifecycle).

Invariants: every state change is kumo.compute.lifecycle's, written by
kumo.compute.lifecycle_apply in the caller's transaction; the caller wakes the host (or the
scheduler) returned. Baremetal servers are refused (409): a node's disk is not kumo's to read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import lifecycle as lc
from kumo.compute import params, servers
from kumo.compute.aggregates import availability_zone_of, zone_exists
from kumo.compute.lifecycle_apply import Requester, apply, state_of
from kumo.compute.models import ComputeHost, Instance
from kumo.compute.node_hosts import BAREMETAL_HYPERVISOR_TYPE, may_be_node
from kumo.compute.states import VmState
from kumo.db import utcnow
from kumo.errors import BadRequest, Conflict, Forbidden
from kumo.image import service as images
from kumo.image.models import Image
from kumo.validation import MAX_INT, int_text

# Nova's shelved_offload_time: 0 offloads at once, -1 never.
OFFLOAD_AT_ONCE, NEVER_OFFLOAD = 0, -1


@dataclass(frozen=True)
class Woken:
    """What to wake after commit: a host's agent, or the scheduler (`host` None)."""

    host: str | None
    image_id: str | None = None


def image_name(value: Any) -> str:
    """createImage's `name`: a string of 1 to 255 characters, as Nova's schema."""
    if not isinstance(value, str) or not value or len(value) > 255:
        raise BadRequest(
            "Invalid input for field/attribute name. Value must be a string of 1 to 255 characters."
        )
    return value


def image_metadata(value: Any) -> dict[str, str]:
    """createImage's optional `metadata`: string keys and values, as Nova's schema."""
    if value is None:
        return {}
    if not isinstance(value, dict) or any(
        not isinstance(k, str) or not isinstance(v, str) or not k or len(k) > 255 or len(v) > 255
        for k, v in value.items()
    ):
        raise BadRequest("Invalid input for field/attribute metadata.")
    return dict(value)


def _refuse_baremetal(session: Session, instance: Instance, what: str) -> None:
    host = instance.host
    if host is None:
        return
    kind = session.scalar(select(ComputeHost.hypervisor_type).where(ComputeHost.name == host))
    if may_be_node(host) or kind == BAREMETAL_HYPERVISOR_TYPE:
        raise Conflict(f"Cannot '{what}' instance {instance.uuid}: baremetal servers cannot be {what}d.")


def _snapshot_image(
    session: Session, instance: Instance, name: str, metadata: dict[str, str], image_type: str = "snapshot"
) -> Image:
    base = session.get(Image, instance.image_ref) if instance.image_ref else None
    properties: dict[str, Any] = {
        **metadata,
        "image_type": image_type,
        "instance_uuid": instance.uuid,
        "base_image_ref": instance.image_ref,
        "user_id": instance.user_id,
    }
    root_gb = int((instance.flavor or {}).get("disk") or 0)
    return images.create_snapshot(
        session, name=name, owner=instance.project_id, base=base, properties=properties, min_disk=root_gb
    )


def create_image(
    session: Session, ctx: RequestContext, server_id: str, name: str, metadata: dict[str, str]
) -> Woken:
    """createImage: a queued image, and the host's snapshot task uploading into it."""
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id, for_update=True)
    _refuse_baremetal(session, instance, "createImage")
    lc.allowed(state_of(instance), "snapshot")  # refused before any image is made
    image = _snapshot_image(session, instance, name, metadata)
    change = lc.snapshot(state_of(instance), image.id, is_admin=ctx.is_admin)
    return Woken(apply(session, instance, change, ctx).wake, image.id)


@dataclass(frozen=True)
class BackupRequest:
    """createBackup's body: the image's name, its backup_type property, how many backups of
    that type to keep (`rotation`), and extra image properties."""

    name: str
    backup_type: str
    rotation: int
    metadata: dict[str, str]


def parse_backup(body: Any) -> BackupRequest:
    """createBackup's value as Nova's schema: name, backup_type (a string) and rotation (a
    non-negative integer, or a string of digits) required; metadata optional; nothing else."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid input for field/attribute createBackup. Value must be an object.")
    unknown = sorted(set(body) - {"name", "backup_type", "rotation", "metadata"})
    if unknown:
        raise BadRequest(
            "Invalid input for field/attribute createBackup. Additional properties are not allowed "
            f"({', '.join(repr(k) for k in unknown)} {'were' if len(unknown) > 1 else 'was'} unexpected)"
        )
    for key in ("name", "backup_type", "rotation"):
        if key not in body:
            raise BadRequest(
                f"Invalid input for field/attribute createBackup. '{key}' is a required property"
            )
    name = image_name(body["name"])
    if name != name.strip():
        raise BadRequest("Invalid input for field/attribute name. Value must not start or end with spaces.")
    backup_type = body["backup_type"]
    if not isinstance(backup_type, str):
        raise BadRequest(f"Invalid input for field/attribute backup_type. Value: {backup_type!r}.")
    rotation = body["rotation"]
    value = (
        rotation
        if isinstance(rotation, int) and not isinstance(rotation, bool)
        else int_text(rotation)
        if isinstance(rotation, str) and rotation.isascii() and rotation.isdigit()
        else None
    )
    if value is None or not 0 <= value <= MAX_INT:
        raise BadRequest(
            f"Invalid input for field/attribute rotation. Value: {rotation!r}. "
            "Value must be a non-negative integer."
        )
    return BackupRequest(name, backup_type, value, image_metadata(body.get("metadata")))


def create_backup(session: Session, ctx: RequestContext, server_id: str, req: BackupRequest) -> Woken:
    """createBackup: a queued image (image_type backup, its backup_type) and the host's
    snapshot task uploading into it; the backups beyond `rotation` go once it is uploaded."""
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id, for_update=True)
    _refuse_baremetal(session, instance, "createBackup")
    lc.allowed(state_of(instance), "backup")  # refused before any image is made
    metadata = {**req.metadata, "backup_type": req.backup_type}
    image = _snapshot_image(session, instance, req.name, metadata, image_type="backup")
    change = lc.backup(
        state_of(instance),
        image.id,
        req.backup_type,
        req.rotation,
        project_id=ctx.project_id,
        is_admin=ctx.is_admin,
    )
    return Woken(apply(session, instance, change, ctx).wake, image.id)


def shelve(session: Session, ctx: RequestContext, server_id: str, offload_time: int) -> Woken:
    """shelve: powered off, its disk uploaded to "<name>-shelved"; offloaded in the same task
    when `offload_time` is 0."""
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id, for_update=True)
    _refuse_baremetal(session, instance, "shelve")
    lc.allowed(state_of(instance), "shelve")
    image = _snapshot_image(session, instance, f"{instance.name}-shelved", {})
    offload = offload_time == OFFLOAD_AT_ONCE
    change = lc.shelve(state_of(instance), image.id, offload=offload, is_admin=ctx.is_admin)
    return Woken(apply(session, instance, change, ctx).wake, image.id)


def shelve_offload(session: Session, ctx: RequestContext, server_id: str) -> Woken:
    """shelveOffload (admin by Nova's default policy): the shelved guest is destroyed."""
    ctx.require_admin()
    instance = servers.get(session, ctx, server_id, for_update=True)
    change = lc.shelve_offload(state_of(instance), is_admin=ctx.is_admin)
    return Woken(apply(session, instance, change, ctx).wake)


@dataclass(frozen=True)
class UnshelveRequest:
    """Where an offloaded server is unshelved to: `zone` pins it to that zone (2.77), `unpin`
    (2.91's availability_zone null) drops its zone, `host` (2.91, admins) asks for that host."""

    zone: str | None = None
    unpin: bool = False
    host: str | None = None

    @property
    def chooses(self) -> bool:
        return self.zone is not None or self.unpin or self.host is not None


# Forced hosts and requested destinations of the create: not kept by an unshelve (Nova's
# RequestSpec.reset_forced_destinations).
_DESTINATION_HINTS = ("force_host", "requested_host")


def parse_unshelve(body: Any, zone_allowed: bool, host_allowed: bool) -> UnshelveRequest:
    """The unshelve action's value as Nova's schemas: ignored before 2.77 (`zone_allowed`
    False); null, or {"availability_zone": string} from 2.77; from 2.91 (`host_allowed`)
    {"availability_zone": string or null, "host": string}, both optional."""
    if not zone_allowed or body is None:
        return UnshelveRequest()
    allowed = {"availability_zone", "host"} if host_allowed else {"availability_zone"}
    if not isinstance(body, dict) or set(body) - allowed:
        raise BadRequest(f"Invalid input for field/attribute unshelve. Value: {body}.")
    if not host_allowed and "availability_zone" not in body:
        raise BadRequest(
            "Invalid input for field/attribute unshelve: 'availability_zone' is a required property"
        )
    zone = body.get("availability_zone")
    if zone is not None and (not isinstance(zone, str) or not zone):
        raise BadRequest(f"Invalid input for field/attribute availability_zone. Value: {zone!r}.")
    if zone is None and not host_allowed and "availability_zone" in body:
        raise BadRequest("Invalid input for field/attribute availability_zone. Value: None.")
    host = params.host_value(body.get("host")) if "host" in body else None
    if "host" in body and not host:
        raise BadRequest("Invalid input for field/attribute host. Value: None.")
    return UnshelveRequest(zone=zone, unpin="availability_zone" in body and zone is None, host=host)


def unshelve(session: Session, ctx: RequestContext, server_id: str, req: UnshelveRequest) -> Woken:
    """unshelve: a SHELVED server powers on on its host; a SHELVED_OFFLOADED one is scheduled
    again, without the create's forced or requested host, in the zone and on the host `req`
    asks for (409 for a SHELVED server asked for either; a host only for admins)."""
    ctx.require_writer()
    if req.host is not None and not ctx.is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:os-shelve:unshelve_to_host to be performed.")
    instance = servers.get(session, ctx, server_id, for_update=True)
    offloaded = instance.vm_state == VmState.SHELVED_OFFLOADED
    if req.chooses and not offloaded:
        raise Conflict(
            f"The instance {instance.uuid} is in vm_state {instance.vm_state}: an availability zone "
            "or host can be chosen only when unshelving a SHELVED_OFFLOADED instance."
        )
    zone = None if req.unpin else (req.zone or instance.requested_az)
    if req.zone is not None and not zone_exists(session, req.zone):
        raise BadRequest("The requested availability zone is not available")
    if req.host is not None:
        if session.scalar(select(ComputeHost.id).where(ComputeHost.name == req.host)) is None:
            raise BadRequest(f"Compute host {req.host} could not be found.")
        if zone is not None and availability_zone_of(session, req.host) != zone:
            raise BadRequest(f"Host {req.host} is not in the availability zone {zone}.")
    change = lc.unshelve(state_of(instance), is_admin=ctx.is_admin)
    woken = Woken(apply(session, instance, change, ctx).wake)
    if offloaded:
        hints = {k: v for k, v in (instance.scheduler_hints or {}).items() if k not in _DESTINATION_HINTS}
        if req.host is not None:
            hints["requested_host"] = req.host
        instance.scheduler_hints = hints
        instance.requested_az = zone
    return woken


def offload_due(session: Session, offload_time: int, now: dt.datetime | None = None) -> list[str]:
    """Offload servers shelved longer than `offload_time` seconds (none when it is -1 or 0: 0
    offloads within the shelve itself); returns the hosts to wake."""
    if offload_time <= OFFLOAD_AT_ONCE:
        return []
    cutoff = (now or utcnow()) - dt.timedelta(seconds=offload_time)
    # Locked as read: of two API workers' passes, the second finds the rows the first offloads
    # no longer due (PostgreSQL re-reads a locked row's conditions once the lock is had).
    due = session.scalars(
        select(Instance)
        .where(
            Instance.vm_state == VmState.SHELVED,
            Instance.task_state.is_(None),
            Instance.deleted.is_(False),
            Instance.shelved_at <= cutoff,
        )
        .with_for_update()
    ).all()
    hosts = []
    for instance in due:
        change = lc.shelve_offload(state_of(instance), is_admin=True)
        woken = apply(session, instance, change, Requester(None)).wake
        if woken is not None:
            hosts.append(woken)
    return hosts
