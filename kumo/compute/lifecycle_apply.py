"""Writing a lifecycle Change (kumo.compute.lifecycle) onto an Instance row, in the caller's
transaction.

Invariants:
- `apply` writes the Change's fields first, then performs its effects in their order; it
  decides nothing (every rule is in kumo.compute.lifecycle). This module and
  kumo.compute.models' column defaults are the only places a server's vm_state, task_state,
  power_state or fault is assigned.
- Work for agents goes to the work queue (kumo.work.queue, a lower layer) as the `Enqueue`
  effect's kind with its typed payload (kumo.work.kinds.PAYLOADS), built here once the `Ref`
  values are filled in; `enqueue`/`cancel` may be replaced (tests). This module imports no
  agent or baremetal module; it writes instance actions (kumo.compute.actions), allocations
  (kumo.placement.claims), group memberships and the server's port bindings
  (kumo.network.servers) only.
- `Ref` values in an effect are the ids of the action and event this Change started (the
  latest of each) and the agent's view of the instance (`spec`, the one definition of it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import delete
from sqlalchemy.orm import Session, object_session

from kumo.compute import actions, migrations
from kumo.compute.aggregates import availability_zone_of
from kumo.compute.lifecycle import (
    BeginAction,
    BeginMigration,
    BindPorts,
    CancelTasks,
    Change,
    DropImage,
    Effect,
    Enqueue,
    Fault,
    FinishEvent,
    ForgetOldFlavor,
    LeaveGroups,
    MigrationStatus,
    RecordAction,
    Ref,
    Release,
    ReleasePort,
    ReleasePorts,
    RenameConsumer,
    RevertFlavor,
    RotateBackups,
    ServerState,
    StartEvent,
    Unchanged,
    abandoned_image,
)
from kumo.compute.models import Instance, ServerGroupMember
from kumo.compute.node_hosts import may_be_node
from kumo.db import utcnow
from kumo.image import service as image_service
from kumo.network import servers as server_networking
from kumo.placement.claims import release, rename_consumer
from kumo.work import queue
from kumo.work.kinds import PAYLOADS, AnyPayload, TaskKind

# kumo.work.queue.enqueue's shape: (session, host, kind, instance_uuid, payload, request_id)
EnqueueFn = Callable[[Session, str, TaskKind, str | None, AnyPayload, str | None], object]
# cancels an instance's pending tasks; returns their kinds and payloads
CancelFn = Callable[[Session, str], Iterable[tuple[str, Mapping[str, Any]]] | None]


class Actor(Protocol):
    """Who a change is made for: recorded on the actions it starts, its request id on its
    tasks. A RequestContext is one."""

    @property
    def request_id(self) -> str | None: ...

    @property
    def user_id(self) -> str | None: ...

    @property
    def project_id(self) -> str | None: ...


@dataclass(frozen=True)
class Requester:
    """An Actor outside a request: an agent's report, the scheduler, a conductor."""

    request_id: str | None
    user_id: str | None = None
    project_id: str | None = None


@dataclass(frozen=True)
class Applied:
    """The action and event the change started (the latest of each), and the host to wake."""

    action_id: int | None
    event_id: int | None
    wake: str | None


def state_of(instance: Instance) -> ServerState:
    return ServerState(
        uuid=instance.uuid,
        vm_state=instance.vm_state,
        task_state=instance.task_state,
        power_state=instance.power_state,
        host=instance.host,
        migration_source=instance.migration_source,
        locked=bool(instance.locked),
        deleted=bool(instance.deleted),
        shelved_image=instance.shelved_image_id,
    )


def state_or_none(instance: Instance | None) -> ServerState | None:
    """The state of a server a task result is about; None when it is gone."""
    return None if instance is None or instance.deleted else state_of(instance)


def spec(instance: Instance) -> dict[str, Any]:
    """What an agent needs to build or act on the instance (no DB access on the agent side):
    its ports (kumo.network.servers.spec_port's shape) are read in the instance's session."""
    session = object_session(instance)
    ports = server_networking.server_ports(session, instance.uuid) if session is not None else []
    return {
        "uuid": instance.uuid,
        "name": instance.name,
        "hostname": instance.hostname,
        "project_id": instance.project_id,
        # an offloaded server is unshelved from its shelve snapshot
        "image_ref": instance.shelved_image_id or instance.image_ref,
        "flavor": instance.flavor,
        "user_data": instance.user_data,
        "key_data": instance.key_data,
        "metadata": instance.metadata_,
        "ports": ports,
        # the hypervisor builds a config-2 drive for it (kumo.agent.libvirt.config_drive)
        "config_drive": bool(instance.config_drive),
    }


def set_flavor(instance: Instance, flavor: dict[str, Any]) -> None:
    """The instance's flavor snapshot and the columns quota counts (cores, RAM) from it."""
    instance.flavor = dict(flavor)
    instance.vcpus = int(flavor.get("vcpus") or 0)
    instance.memory_mb = int(flavor.get("ram") or 0)


def fault_record(fault: Fault) -> dict[str, Any]:
    """A fault as the instance's fault column holds it."""
    return {
        "code": fault.code,
        "message": fault.message[:255],
        "details": fault.message,
        "created": utcnow().isoformat(),
    }


def write(instance: Instance, change: Change) -> None:
    """Write a change that has no effects and reads nothing (mark_error, power_observed)."""
    if change.effects or change.zone_from_host:
        raise ValueError("a change with effects or a zone to look up needs apply()")
    _write_fields(instance, change, None)


def apply(
    session: Session,
    instance: Instance,
    change: Change,
    actor: Actor,
    *,
    enqueue: EnqueueFn = queue.enqueue,
    cancel: CancelFn = queue.cancel_for_instance,
) -> Applied:
    """Write `change` onto `instance`, then perform its effects in order."""
    _write_fields(instance, change, session)
    return _Effects(session, instance, actor, enqueue, cancel).run(change)


def apply_if(
    session: Session,
    instance: Instance | None,
    change: Change,
    actor: Actor,
    *,
    enqueue: EnqueueFn = queue.enqueue,
    cancel: CancelFn = queue.cancel_for_instance,
) -> Applied:
    """As apply, for a change about a server that may be gone (a task result): then only
    effects that need no instance (finishing an event) may be in it."""
    if instance is not None:
        return apply(session, instance, change, actor, enqueue=enqueue, cancel=cancel)
    if any(
        not isinstance(effect, FinishEvent) or isinstance(effect.event_id, Ref) for effect in change.effects
    ):
        raise ValueError("a change about no server may only finish events it names")
    for effect in change.effects:
        assert isinstance(effect, FinishEvent) and isinstance(effect.event_id, int)
        actions.finish_event(session, effect.event_id, effect.ok, effect.details, effect.traceback)
    return Applied(None, None, change.wake)


def _write_fields(instance: Instance, change: Change, session: Session | None) -> None:
    if not isinstance(change.vm_state, Unchanged):
        instance.vm_state = change.vm_state
    if not isinstance(change.task_state, Unchanged):
        instance.task_state = change.task_state
    if not isinstance(change.power_state, Unchanged):
        instance.power_state = int(change.power_state)
    if not isinstance(change.host, Unchanged):
        instance.host = change.host
    if not isinstance(change.availability_zone, Unchanged):
        instance.availability_zone = change.availability_zone
    if change.zone_from_host and session is not None and instance.host is not None:
        instance.availability_zone = availability_zone_of(session, instance.host)
    if not isinstance(change.migration_source, Unchanged):
        instance.migration_source = change.migration_source
    if change.fault is not None:
        instance.fault = fault_record(change.fault)
    if change.launched:
        instance.launched_at = utcnow()
    if change.resized:
        instance.resized_at = utcnow()
    if change.progress is not None:
        instance.progress = change.progress
    if not isinstance(change.shelved_image, Unchanged):
        instance.shelved_image_id = change.shelved_image
        instance.shelved_at = None if change.shelved_image is None else utcnow()
    if change.deleted:
        instance.deleted = True
        instance.terminated_at = utcnow()


class _Effects:
    """Performs a change's effects, remembering the action and event it started."""

    def __init__(
        self, session: Session, instance: Instance, actor: Actor, enqueue: EnqueueFn, cancel: CancelFn
    ) -> None:
        self.session, self.instance, self.actor = session, instance, actor
        self.enqueue, self.cancel = enqueue, cancel
        self.action_id: int | None = None
        self.event_id: int | None = None

    def run(self, change: Change) -> Applied:
        for effect in change.effects:
            self._perform(effect)
        return Applied(self.action_id, self.event_id, change.wake)

    def _perform(self, effect: Effect) -> None:
        session, uuid, actor = self.session, self.instance.uuid, self.actor
        if isinstance(effect, BeginAction):
            row = actions.start_action(
                session, uuid, effect.name, actor.request_id or "-", actor.user_id, actor.project_id
            )
            self.action_id = row.id
            if effect.event is not None:
                self.event_id = actions.start_event(session, row.id, effect.event, effect.host).id
        elif isinstance(effect, StartEvent):
            action_id = self._resolve(effect.action_id)
            self.event_id = actions.start_event(session, _known(action_id), effect.event, effect.host).id
        elif isinstance(effect, FinishEvent):
            event_id = _known(self._resolve(effect.event_id))
            actions.finish_event(session, event_id, effect.ok, effect.details, effect.traceback)
        elif isinstance(effect, RecordAction):
            actions.record(
                session,
                uuid,
                effect.name,
                effect.event,
                actor.request_id or "-",
                actor.user_id,
                actor.project_id,
                details=effect.details,
                host=effect.host,
            )
        elif isinstance(effect, Enqueue):
            fields = {key: self._resolve(value) for key, value in effect.payload.items()}
            payload = PAYLOADS[effect.kind].from_json(fields)
            self.enqueue(session, effect.host, effect.kind, uuid, payload, actor.request_id)
        elif isinstance(effect, Release):
            release(session, effect.consumer)
        elif isinstance(effect, RenameConsumer):
            rename_consumer(session, effect.old, effect.new)
        elif isinstance(effect, CancelTasks):
            for kind, cancelled in self.cancel(session, uuid) or ():
                abandoned = abandoned_image(kind, cancelled)
                if abandoned is not None:  # an upload that already finished keeps its image
                    image_service.discard(session, abandoned, unless_active=True)
        elif isinstance(effect, LeaveGroups):
            session.execute(delete(ServerGroupMember).where(ServerGroupMember.instance_uuid == uuid))
        elif isinstance(effect, BindPorts):
            server_networking.bind_server_ports(
                session,
                uuid,
                effect.host,
                _vnic_type(effect.host),
                self.instance.availability_zone,
                sync_firewalls=not effect.first_placement,
            )
        elif isinstance(effect, ReleasePorts):
            server_networking.release_server_ports(session, uuid)
        elif isinstance(effect, ReleasePort):
            server_networking.release_server_ports(session, uuid, only=effect.port_id)
        elif isinstance(effect, RevertFlavor):
            if self.instance.old_flavor is not None:
                set_flavor(self.instance, self.instance.old_flavor)
                self.instance.old_flavor = None
        elif isinstance(effect, ForgetOldFlavor):
            self.instance.old_flavor = None
        elif isinstance(effect, DropImage):
            image_service.discard(session, effect.image_id, unless_active=effect.unless_active)
        elif isinstance(effect, RotateBackups):
            image_service.rotate_backups(
                session,
                uuid,
                self.instance.project_id,
                effect.backup_type,
                effect.keep,
                requester=effect.project_id,
                requester_is_admin=effect.is_admin,
            )
        elif isinstance(effect, BeginMigration):
            migrations.begin(
                session,
                self.instance,
                effect.migration_type,
                effect.source,
                effect.dest,
                effect.status,
                actor.user_id,
                actor.project_id,
            )
        elif isinstance(effect, MigrationStatus):
            migrations.set_status(session, uuid, effect.status)

    def _resolve(self, value: object) -> Any:
        if value is Ref.ACTION:
            return self.action_id
        if value is Ref.EVENT:
            return self.event_id
        if value is Ref.SPEC:
            return spec(self.instance)
        if value is Ref.REVERTED_SPEC:
            reverted = spec(self.instance)
            if self.instance.old_flavor is not None:
                reverted["flavor"] = self.instance.old_flavor
            return reverted
        return value


def _vnic_type(host: str) -> str:
    """A baremetal node (its uuid is its host name) takes a "baremetal" binding."""
    return "baremetal" if may_be_node(host) else "normal"


def _known(value: object) -> int:
    if not isinstance(value, int):
        raise ValueError(f"no action or event started for this effect (got {value!r})")
    return value
