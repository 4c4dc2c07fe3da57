"""Day-2 server actions: pause/unpause, suspend/resume, rescue/unrescue, resize, trigger crash
dump, diagnostics, and the auto-confirm of resizes left in VERIFY_RESIZE.

Invariants: every state change is decided by kumo.compute.lifecycle (the action table of
kumo.compute.states) and written by kumo.compute.lifecycle_apply in the caller's transaction;
each returns the host whose agent to wake after commit. A baremetal server takes none of them
(409, naming the action): a node has no hypervisor to pause, save, resize or inject an NMI
into, and kumo's conductor has no rescue boot (Ironic's rescue interface) yet.

A resize is a cold migration to a new flavor (kumo.compute.moves' path): the server's flavor
becomes the new one at once (its old one kept on the row), so the destination's claim, the
quota count and the spec its destination builds the guest from all read the new one; a revert
or a failed resize restores the old one, a confirm forgets it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import flavors, quotas, servers
from kumo.compute import lifecycle as lc
from kumo.compute.lifecycle_apply import Requester, apply, set_flavor, spec, state_of
from kumo.compute.models import Instance
from kumo.compute.node_hosts import may_be_node
from kumo.compute.scheduling import claim_destination
from kumo.compute.server_ops import woken
from kumo.compute.states import TaskState, VmState
from kumo.config import get_settings
from kumo.db import Database, utcnow
from kumo.errors import BadRequest, Conflict, InvalidState
from kumo.image.service import get_image_for_boot
from kumo.work import queue
from kumo.work.kinds import DiagnosticsPayload, TaskKind

# The actions that only change the guest's run state (their kinds in kumo.compute.states).
SIMPLE = {"pause", "unpause", "suspend", "resume", "unrescue", "trigger_crash_dump"}
DIAGNOSTICS_WAIT_SECONDS = 15.0


def _refuse_baremetal(instance: Instance, action: str) -> None:
    if instance.host is not None and may_be_node(instance.host):
        raise Conflict(
            f"Cannot '{action}' instance {instance.uuid}: it is a baremetal server, "
            "which does not support this action."
        )


def simple(session: Session, ctx: RequestContext, server_id: str, kind: str) -> str:
    """pause, unpause, suspend, resume, unrescue or trigger_crash_dump."""
    if kind not in SIMPLE:
        raise ValueError(f"{kind} is no simple day-2 action")
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id)
    _refuse_baremetal(instance, kind)
    change = lc.request(state_of(instance), kind, is_admin=ctx.is_admin)
    return woken(apply(session, instance, change, ctx).wake)


@dataclass(frozen=True)
class RescueRequest:
    admin_pass: str | None = None
    image_ref: str | None = None


def parse_rescue(args: Any) -> RescueRequest:
    """`{"rescue": null}` or `{"rescue": {"adminPass": "...", "rescue_image_ref": "..."}}`."""
    if args is None:
        return RescueRequest()
    if not isinstance(args, dict) or set(args) - {"adminPass", "rescue_image_ref"}:
        raise BadRequest("Invalid input for field/attribute rescue.")
    admin_pass, image_ref = args.get("adminPass"), args.get("rescue_image_ref")
    for key, value in (("adminPass", admin_pass), ("rescue_image_ref", image_ref)):
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value!r}.")
    return RescueRequest(admin_pass or None, image_ref or None)


def rescue(
    session: Session, ctx: RequestContext, server_id: str, req: RescueRequest, with_password: bool
) -> tuple[str, str | None]:
    """Boot the server from its rescue image (its own image unless one is named), its disk
    attached second. Returns (host to wake, the rescue password: the one asked for, else a new
    one; None when `with_password` is off)."""
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id)
    _refuse_baremetal(instance, "rescue")
    image = get_image_for_boot(session, ctx, req.image_ref or instance.image_ref)
    password = (req.admin_pass or secrets.token_urlsafe(9)) if with_password else None
    extra = {"image_ref": image.id, "admin_pass": password}
    change = lc.request(state_of(instance), "rescue", is_admin=ctx.is_admin, extra=extra)
    return woken(apply(session, instance, change, ctx).wake), password


def parse_resize(args: Any) -> str:
    """The flavorRef of `{"resize": {"flavorRef": ..., "OS-DCF:diskConfig": ...}}`."""
    if not isinstance(args, dict) or "flavorRef" not in args:
        raise BadRequest("Invalid input for field/attribute resize. 'flavorRef' is a required property")
    if set(args) - {"flavorRef", "OS-DCF:diskConfig"}:
        raise BadRequest("Invalid input for field/attribute resize. Additional properties are not allowed")
    ref = args["flavorRef"]
    if isinstance(ref, int) and not isinstance(ref, bool):
        ref = str(ref)
    if not isinstance(ref, str) or not ref.strip():
        raise BadRequest(f"Invalid input for field/attribute flavorRef. Value: {ref!r}.")
    return ref


def resize(session: Session, ctx: RequestContext, server_id: str, flavor_ref: str) -> str:
    """Cold-migrate the server to the flavor `flavor_ref` names: 400 for its own flavor or a
    smaller root disk, 403 when the growth exceeds the project's quota; the destination (any
    host the scheduler core picks, its own included when allowed) is claimed now."""
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id, for_update=True)
    _refuse_baremetal(instance, "resize")
    state = state_of(instance)
    # The lock's and the state's 409s before the flavor's 400s (pure: nothing is applied).
    lc.request_resize(state, instance.host or "-", is_admin=ctx.is_admin)
    new = flavors.get_flavor_for_boot(session, ctx, flavor_ref)
    old = dict(instance.flavor)
    if new.id == old.get("id"):
        raise BadRequest("When resizing, instances must change flavor!")
    if new.disk < int(old.get("disk") or 0):
        raise BadRequest("Server disk was unable to be resized because: Unable to resize disk down.")
    quotas.check_instance_quota(
        session,
        instance.project_id,
        0,
        max(0, new.vcpus - int(old.get("vcpus") or 0)),
        max(0, new.ram - int(old.get("ram") or 0)),
    )
    set_flavor(instance, flavors.snapshot(new))
    instance.old_flavor = old
    allow_same = get_settings().allow_resize_to_same_host
    dest = claim_destination(session, instance, None, move="resize", allow_source=allow_same)
    change = lc.request_resize(state, dest, is_admin=ctx.is_admin)
    return woken(apply(session, instance, change, ctx).wake)


# ------------------------------------------------------------------------------- auto-confirm


def due_for_confirm(session: Session, window: int, now: dt.datetime | None = None) -> list[str]:
    """The servers RESIZED for `window` seconds or more (none when the window is 0)."""
    if window <= 0:
        return []
    before = (now or utcnow()) - dt.timedelta(seconds=window)
    stmt = select(Instance.uuid).where(
        Instance.vm_state == VmState.RESIZED,
        Instance.task_state.is_(None),
        Instance.deleted.is_(False),
        Instance.resized_at.is_not(None),
        Instance.resized_at <= before,
    )
    return list(session.scalars(stmt.order_by(Instance.id).limit(100)))


def auto_confirm(session: Session, instance_uuid: str) -> bool:
    """Confirm one resize on Nova's periodic task's behalf; False when the server moved on
    meanwhile (confirmed, reverted, deleted)."""
    instance = session.scalar(select(Instance).where(Instance.uuid == instance_uuid).with_for_update())
    if instance is None or instance.deleted or instance.task_state is not None:
        return False
    try:
        change = lc.confirm_resize(state_of(instance))
    except InvalidState:
        return False
    apply(session, instance, change, Requester(None))
    return True


def confirm_due(db: Database, window: int) -> int:
    """One pass of the auto-confirm: each due server in a transaction of its own."""
    with db.read() as session:
        due = due_for_confirm(session, window)
    confirmed = 0
    for uuid in due:
        with db.transaction() as session:
            confirmed += auto_confirm(session, uuid)
    return confirmed


# -------------------------------------------------------------------------------- diagnostics

# 2.48's fields, each with the value it takes when the driver has none.
_DIAGNOSTICS_248: Mapping[str, Any] = {
    "state": "pending",
    "driver": "unknown",
    "hypervisor": None,
    "hypervisor_os": None,
    "uptime": None,
    "config_drive": False,
    "num_cpus": 0,
    "num_nics": 0,
    "num_disks": 0,
    "memory_details": {"maximum": None, "used": None},
    "cpu_details": [],
    "nic_details": [],
    "disk_details": [],
}


def request_diagnostics(session: Session, ctx: RequestContext, server_id: str) -> tuple[str, str]:
    """Admin: ask the server's host for its guest's diagnostics; returns (task id, host)."""
    ctx.require_admin()
    instance = servers.get(session, ctx, server_id)
    _refuse_baremetal(instance, "diagnostics")
    if instance.host is None or instance.task_state in (TaskState.DELETING, TaskState.SPAWNING):
        raise Conflict(
            f"Cannot 'get_diagnostics' instance {instance.uuid} while it is in vm_state {instance.vm_state}"
        )
    task = queue.enqueue(
        session, instance.host, TaskKind.DIAGNOSTICS, None, DiagnosticsPayload(spec(instance)), ctx.request_id
    )
    return task.id, instance.host


def collect_diagnostics(db: Database, task_id: str) -> dict[str, Any]:
    result = queue.await_answer(db, task_id, DIAGNOSTICS_WAIT_SECONDS, "Diagnostics")
    raw = result.get("diagnostics")
    return dict(raw) if isinstance(raw, dict) else {}


def diagnostics_view(raw: Mapping[str, Any], at_least_248: bool) -> dict[str, Any]:
    """The driver's diagnostics as the API shows them: 2.48's standard shape (every field,
    defaults where the driver has none), or before it a flat map of counters as Nova's libvirt
    driver gave (cpuN_time, memory, <disk>_read…, <nic>_rx…)."""
    full = {key: raw.get(key, default) for key, default in _DIAGNOSTICS_248.items()}
    if at_least_248:
        return full
    flat: dict[str, Any] = {}
    for cpu in full["cpu_details"]:
        flat[f"cpu{cpu.get('id', 0)}_time"] = cpu.get("time")
    flat["memory"] = (full["memory_details"] or {}).get("maximum")
    for index, disk in enumerate(full["disk_details"]):
        name = f"vd{chr(ord('a') + index)}"
        for key in ("read_requests", "read_bytes", "write_requests", "write_bytes", "errors_count"):
            flat[f"{name}_{key.replace('_bytes', '').replace('_requests', '_req')}"] = disk.get(key)
    for index, nic in enumerate(full["nic_details"]):
        for key in ("rx_octets", "rx_packets", "rx_errors", "rx_drop", "tx_octets", "tx_packets"):
            flat[f"nic{index}_{key.replace('_octets', '')}"] = nic.get(key)
    return flat
