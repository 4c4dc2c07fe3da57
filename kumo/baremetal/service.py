"""Baremetal nodes: enrolment, updates, provision and power actions, and settling what their
conductors report. Every provision state change goes through kumo.baremetal.states.

Work for a node is a task row targeting `Task.host = node uuid` (kumo.work.queue.enqueue),
picked up by the node's conductor through the agents' fleet poll. Two hooks (`HOOKS`, a
kumo.work.hooks.WorkHooks registered at start-up by kumo.wiring) tie nodes into the compute
path without the compute code knowing about baremetal:

- `on_task_enqueued` runs for every task enqueued: for a node it adds the node to the payload
  and moves the node (a server spawned on it → deploying, deleted → deleting, rebuilt → deploying;
  moves are refused: a physical machine cannot migrate).
- `settle` runs for every task result, before the server's own settling
  (kumo.compute.server_ops.settle): for a node it moves the node on (deploying → active / deploy
  failed, deleting → cleaning → available, …).
"""

from __future__ import annotations

import logging
import re
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.baremetal import hosts, states
from kumo.baremetal.conductors import node_for_conductor
from kumo.baremetal.drivers import DRIVERS
from kumo.baremetal.microversion import ADOPT, ENROLL_STATE, Version
from kumo.baremetal.models import Node, NodePort
from kumo.compute import lifecycle as lc
from kumo.compute.aggregates import availability_zone_of
from kumo.compute.lifecycle_apply import Requester, apply, state_of, write
from kumo.compute.models import ComputeHost, Flavor, Instance
from kumo.compute.node_hosts import is_uuid, may_be_node
from kumo.compute.scheduling import resources_of
from kumo.compute.states import PowerState
from kumo.db import keyset, utcnow
from kumo.errors import BadRequest, Conflict, NotAcceptable, NotFound
from kumo.placement import claims
from kumo.placement.models import ResourceProvider
from kumo.validation import MAX_INT
from kumo.work import queue
from kumo.work.kinds import AnyPayload, EmptyPayload, NodePowerPayload, TaskKind
from kumo.work.models import Task

log = logging.getLogger(__name__)

NODE_TASKS = frozenset({TaskKind.NODE_VERIFY, TaskKind.NODE_CLEAN, TaskKind.NODE_ADOPT, TaskKind.NODE_POWER})
# Questions a conductor answers about a node's machine (its serial console), changing nothing.
QUESTION_TASKS = frozenset({TaskKind.CONSOLE})
# Server work a conductor can do on a node; anything else (moves) is refused at enqueue time.
SERVER_TASKS = frozenset(
    {
        TaskKind.SPAWN,
        TaskKind.DELETE,
        TaskKind.REBUILD,
        TaskKind.START,
        TaskKind.STOP,
        TaskKind.REBOOT,
        TaskKind.REBOOT_HARD,
    }
)
# Nodes may be deleted only when they hold nothing and nothing runs on them (Ironic's list).
DELETABLE = frozenset(
    {states.ENROLL, states.MANAGEABLE, states.AVAILABLE, states.ADOPT_FAILED, states.CLEAN_FAILED}
)
INT_PROPERTIES = ("cpus", "memory_mb", "local_gb")
_NAME = re.compile(r"^[A-Za-z0-9\-._~]+$")
# Fields a client may set at creation (interfaces and other Ironic fields are accepted and
# ignored: kumo picks a node's interfaces from its driver).
CREATE_FIELDS = frozenset(
    {
        "uuid",
        "name",
        "driver",
        "driver_info",
        "properties",
        "extra",
        "instance_info",
        "resource_class",
        "description",
        "owner",
        "lessee",
        "chassis_uuid",
        "conductor_group",
        "automated_clean",
        "network_data",
        "shard",
        "parent_node",
        "disable_power_off",
        "instance_name",
    }
    | {f"{iface}_interface" for iface in hosts.INTERFACES}
)
DICT_FIELDS = ("driver_info", "properties", "extra", "instance_info")
TEXT_FIELDS = ("name", "driver", "resource_class", "description", "owner", "lessee")


# ---------------------------------------------------------------------------- reading


def get_node(session: Session, ctx: RequestContext, ident: str, lock: bool = False) -> Node:
    ctx.require_admin()
    column = Node.uuid if is_uuid(ident) else Node.name
    stmt = select(Node).where(column == ident)
    if lock:
        stmt = stmt.with_for_update()
    node = session.scalar(stmt)
    if node is None:
        raise NotFound(f"Node {ident} could not be found.")
    return node


def parse_bool(value: str | None, name: str) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on", "y", "t"):
        return True
    if lowered in ("false", "0", "no", "off", "n", "f"):
        return False
    raise BadRequest(f"Invalid value for {name}: {value}")


@dataclass(frozen=True)
class NodeQuery:
    limit: int | None = None
    marker: str | None = None
    associated: str | None = None
    maintenance: str | None = None
    provision_state: str | None = None
    driver: str | None = None
    resource_class: str | None = None
    fault: str | None = None
    owner: str | None = None
    lessee: str | None = None
    instance_uuid: str | None = None
    sort_key: str = "id"
    sort_dir: str = "asc"


_SORT = {"id": Node.id, "uuid": Node.uuid, "name": Node.name, "created_at": Node.created_at}


def list_nodes(session: Session, ctx: RequestContext, q: NodeQuery) -> list[Node]:
    ctx.require_admin()
    if q.sort_key not in _SORT:
        raise BadRequest(f"The sort_key value {q.sort_key} is an invalid field for sorting")
    if q.sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort direction: {q.sort_dir}. Acceptable values are 'asc' or 'desc'")
    if q.limit is not None and q.limit < 0:
        raise BadRequest(f"Limit must be positive: {q.limit}")
    stmt = select(Node)
    associated = parse_bool(q.associated, "associated")
    if associated is not None:
        stmt = stmt.where(Node.instance_uuid.is_not(None) if associated else Node.instance_uuid.is_(None))
    maintenance = parse_bool(q.maintenance, "maintenance")
    if maintenance is not None:
        stmt = stmt.where(Node.maintenance.is_(maintenance))
    filters: tuple[tuple[Any, str | None], ...] = (
        (Node.provision_state, q.provision_state),
        (Node.driver, q.driver),
        (Node.resource_class, q.resource_class),
        (Node.fault, q.fault),
        (Node.owner, q.owner),
        (Node.lessee, q.lessee),
        (Node.instance_uuid, q.instance_uuid),
    )
    for column, value in filters:
        if value is not None:
            stmt = stmt.where(column == value)
    sort_column, descending = _SORT[q.sort_key], q.sort_dir == "desc"
    if q.marker:
        marker = session.scalar(select(Node).where(Node.uuid == q.marker))
        if marker is None:
            raise BadRequest(f"Marker {q.marker} could not be found.")
        stmt = stmt.where(
            keyset.after(sort_column, Node.id, (getattr(marker, q.sort_key), marker.id), descending)
        )
    stmt = stmt.order_by(*keyset.order_by(sort_column, Node.id, descending))
    if q.limit:
        stmt = stmt.limit(q.limit)
    return list(session.scalars(stmt))


# ---------------------------------------------------------------------------- validation


def _check_name(name: Any) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or not name or len(name) > 255 or not _NAME.match(name) or is_uuid(name):
        raise BadRequest(f"Expected a logical name but received {name}.")
    return name


def _check_driver(driver: Any) -> str:
    if not isinstance(driver, str) or driver not in DRIVERS:
        raise BadRequest(
            f"No valid host was found. Reason: No conductor service registered which supports driver "
            f'{driver} for conductor group "". Known drivers: {", ".join(DRIVERS)}.'
        )
    return driver


def _check_dict(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value!r}. Expected a dictionary."
        )
    return dict(value)


def _check_properties(props: dict[str, Any]) -> dict[str, Any]:
    """cpus, memory_mb and local_gb are non-negative integers; the failure-domain labels strings."""
    out = dict(props)
    for key in INT_PROPERTIES:
        if key in out and out[key] is not None:
            try:
                number = int(out[key])
            except (TypeError, ValueError, OverflowError):
                raise BadRequest(f"Invalid property {key}: {out[key]!r} is not an integer.") from None
            if number < 0:
                raise BadRequest(f"Invalid property {key}: {number} is negative.")
            if number > MAX_INT:  # the node's placement inventory is a 32-bit INTEGER
                raise BadRequest(f"Invalid property {key}: {number} is greater than {MAX_INT}.")
            out[key] = number
    for key in hosts.LABELS:
        if key in out and out[key] is not None and not isinstance(out[key], str):
            out[key] = str(out[key])
    return out


def _check_text(value: Any, field: str, limit: int = 255) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value!r}.")
    return value


def _check_resource_class(value: Any) -> str | None:
    rc = _check_text(value, "resource_class", 80)
    if rc is not None and not rc:
        return None
    return rc


# ---------------------------------------------------------------------------- enrolment


def create_node(session: Session, ctx: RequestContext, body: Any, version: Version) -> Node:
    ctx.require_admin()
    if not isinstance(body, dict):
        raise BadRequest("Invalid input: the request body must be a JSON object.")
    unknown = sorted(set(body) - CREATE_FIELDS)
    if unknown:
        raise BadRequest(f"Unknown attribute for argument node: {', '.join(unknown)}")
    if "driver" not in body:
        raise BadRequest("Missing mandatory field: driver")
    node_uuid = body.get("uuid") or str(uuidlib.uuid4())
    if not isinstance(node_uuid, str) or not is_uuid(node_uuid):
        raise BadRequest(f"Expected a UUID but received {node_uuid}.")
    node_uuid = str(uuidlib.UUID(node_uuid))
    name = _check_name(body.get("name"))
    if session.scalar(select(Node.id).where(Node.uuid == node_uuid)) is not None:
        raise Conflict(f"A node with UUID {node_uuid} already exists.")
    if name is not None and session.scalar(select(Node.id).where(Node.name == name)) is not None:
        raise Conflict(f"A node with name {name} already exists.")
    node = Node(
        uuid=node_uuid,
        name=name,
        driver=_check_driver(body["driver"]),
        driver_info=_check_dict(body.get("driver_info"), "driver_info"),
        properties=_check_properties(_check_dict(body.get("properties"), "properties")),
        extra=_check_dict(body.get("extra"), "extra"),
        instance_info=_check_dict(body.get("instance_info"), "instance_info"),
        resource_class=_check_resource_class(body.get("resource_class")),
        description=_check_text(body.get("description"), "description", 4096),
        owner=_check_text(body.get("owner"), "owner"),
        lessee=_check_text(body.get("lessee"), "lessee"),
        # Ironic: nodes created before API 1.11 start available, from 1.11 in enroll.
        provision_state=states.ENROLL if version.at_least(ENROLL_STATE) else states.AVAILABLE,
        maintenance=False,
        power_sync_failures=0,
    )
    session.add(node)
    session.flush()
    hosts.ensure_host(session, node)
    return node


def apply_patch(
    doc: dict[str, Any], patch: Any, dict_fields: tuple[str, ...] = DICT_FIELDS
) -> dict[str, Any]:
    """RFC 6902 add/replace/remove on the patchable part of a node (or a port): the top-level
    fields of `doc`, and keys inside its `dict_fields`."""
    if not isinstance(patch, list) or not patch:
        raise BadRequest("Invalid patch: expected a non-empty list of operations.")
    for op in patch:
        if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove") or "path" not in op:
            raise BadRequest(f"Invalid patch operation: {op!r}. Supported operations: add, replace, remove.")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in str(op["path"]).strip("/").split("/")]
        top = parts[0]
        if top not in doc:
            raise BadRequest(f"Cannot update or remove '/{top}': it is read-only or does not exist.")
        if len(parts) == 1:
            if op["op"] == "remove":
                doc[top] = {} if top in dict_fields else None
            else:
                if "value" not in op:
                    raise BadRequest(f"'add' and 'replace' operations need a value (path {op['path']}).")
                doc[top] = op["value"]
            continue
        if top not in dict_fields:
            raise BadRequest(f"Cannot update '{op['path']}': {top} is not a dictionary.")
        target: Any = dict(doc[top] or {})
        doc[top] = target
        for key in parts[1:-1]:
            nested = target.get(key)
            if not isinstance(nested, dict):
                if op["op"] == "remove":
                    raise BadRequest(f"Can't remove non-existent object '{parts[-1]}'")
                nested = {}
            target[key] = dict(nested)
            target = target[key]
        leaf = parts[-1]
        if op["op"] == "remove":
            if leaf not in target:
                raise BadRequest(f"Can't remove non-existent object '{leaf}'")
            del target[leaf]
        else:
            if "value" not in op:
                raise BadRequest(f"'add' and 'replace' operations need a value (path {op['path']}).")
            target[leaf] = op["value"]
    return doc


def update_node(session: Session, ctx: RequestContext, ident: str, patch: Any) -> Node:
    node = get_node(session, ctx, ident, lock=True)
    doc = {f: getattr(node, f) for f in (*TEXT_FIELDS, *DICT_FIELDS)}
    doc = apply_patch({k: (dict(v) if isinstance(v, dict) else v) for k, v in doc.items()}, patch)
    name = _check_name(doc["name"])
    if name != node.name and name is not None:
        if session.scalar(select(Node.id).where(Node.name == name, Node.id != node.id)) is not None:
            raise Conflict(f"A node with name {name} already exists.")
    resource_class = _check_resource_class(doc["resource_class"])
    if resource_class != node.resource_class and node.instance_uuid is not None:
        raise BadRequest(
            f"Node {node.uuid} is associated with instance {node.instance_uuid}: its resource_class "
            "cannot change."
        )
    node.name = name
    node.driver = _check_driver(doc["driver"])
    node.resource_class = resource_class
    node.description = _check_text(doc["description"], "description", 4096)
    node.owner = _check_text(doc["owner"], "owner")
    node.lessee = _check_text(doc["lessee"], "lessee")
    node.driver_info = _check_dict(doc["driver_info"], "driver_info")
    node.properties = _check_properties(_check_dict(doc["properties"], "properties"))
    node.extra = _check_dict(doc["extra"], "extra")
    node.instance_info = _check_dict(doc["instance_info"], "instance_info")
    node.updated_at = utcnow()
    session.flush()
    hosts.ensure_host(session, node)
    return node


def delete_node(session: Session, ctx: RequestContext, ident: str) -> None:
    node = get_node(session, ctx, ident, lock=True)
    if node.instance_uuid is not None:
        raise Conflict(f"Node {node.uuid} is associated with instance {node.instance_uuid}.")
    if node.provision_state not in DELETABLE and not node.maintenance:
        raise Conflict(
            f'Can not delete node "{node.uuid}" while it is in provision state "{node.provision_state}". '
            f"Valid provision states to start deletion are: {', '.join(sorted(DELETABLE))}, "
            "or set the node in maintenance mode."
        )
    session.execute(
        update(Task)
        .where(Task.host == node.uuid, Task.state == "pending")
        .values(state="cancelled")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(NodePort).where(NodePort.node_id == node.id).execution_options(synchronize_session=False)
    )
    hosts.remove_host(session, node)
    session.delete(node)
    session.flush()


# ---------------------------------------------------------------------------- actions


def _move(node: Node, event: str) -> None:
    node.provision_state = states.advance(node.provision_state, event, node.name or node.uuid)
    node.target_provision_state = states.target_of(node.provision_state)
    node.provision_updated_at = utcnow()


def _enqueue(session: Session, ctx: RequestContext, node: Node, kind: TaskKind, payload: AnyPayload) -> None:
    # Node work is not a server's: no instance, so the compute side never settles it.
    queue.enqueue(session, node.uuid, kind, None, payload, ctx.request_id)


def set_provision_state(
    session: Session, ctx: RequestContext, ident: str, body: Any, version: Version
) -> str:
    """PUT /nodes/{n}/states/provision. Returns the node's uuid (the conductor to wake is the
    node's: the caller wakes its host key)."""
    if not isinstance(body, dict) or not isinstance(body.get("target"), str):
        raise BadRequest("Invalid request: 'target' is required.")
    verb = body["target"]
    node = get_node(session, ctx, ident, lock=True)
    label = node.name or node.uuid
    if verb not in states.API_VERBS:
        raise BadRequest(f'The requested action "{verb}" is not supported by kumo\'s baremetal API.')
    if verb in ("active", states.REBUILD, states.UNDEPLOY, "undeploy"):
        raise BadRequest(
            f'The requested action "{verb}" can not be performed on node "{label}" through the baremetal '
            "API: servers are deployed, rebuilt and deleted through the compute API "
            "(openstack server create/rebuild/delete)."
        )
    if verb == states.ADOPT and not version.at_least(ADOPT):
        raise NotAcceptable(f'The "adopt" action needs API version 1.17 or later (asked: {version}).')
    if verb in (states.PROVIDE, states.ADOPT) and node.maintenance:
        raise BadRequest(f'Node "{label}" is in maintenance mode: "{verb}" is not allowed.')
    if verb == states.ADOPT:
        _check_adoptable(session, node)
    _move(node, verb)
    node.last_error = None
    kind = {
        states.MANAGE: TaskKind.NODE_VERIFY,
        states.PROVIDE: TaskKind.NODE_CLEAN,
        states.ADOPT: TaskKind.NODE_ADOPT,
    }[verb]
    if node.provision_state == states.MANAGEABLE:  # available → manageable needs no conductor
        node.target_provision_state = None
    else:
        _enqueue(session, ctx, node, kind, EmptyPayload())
    hosts.sync_inventory(session, node)
    return node.uuid


def set_power_state(session: Session, ctx: RequestContext, ident: str, body: Any) -> str:
    if not isinstance(body, dict) or body.get("target") not in states.POWER_TARGETS:
        target = body.get("target") if isinstance(body, dict) else None
        raise BadRequest(
            f"Invalid power state {target!r}: expected one of {', '.join(sorted(states.POWER_TARGETS))}."
        )
    timeout = body.get("timeout")
    if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
        raise BadRequest("Invalid timeout: it must be a positive integer.")
    node = get_node(session, ctx, ident, lock=True)
    if node.target_power_state is not None or node.provision_state in states.TRANSIENT:
        raise Conflict(
            f"Node {node.uuid} is locked by host kumo, please retry after the current operation is completed."
        )
    target = body["target"]
    node.target_power_state = states.POWER_OFF if target == states.SOFT_POWER_OFF else target
    node.last_error = None
    _enqueue(session, ctx, node, TaskKind.NODE_POWER, NodePowerPayload(target, timeout))
    return node.uuid


def set_maintenance(session: Session, ctx: RequestContext, ident: str, on: bool, reason: str | None) -> None:
    node = get_node(session, ctx, ident, lock=True)
    node.maintenance = on
    node.maintenance_reason = reason if on else None
    if not on:
        node.fault = None
        node.power_sync_failures = 0
    node.updated_at = utcnow()
    hosts.sync_inventory(session, node)


# ---------------------------------------------------------------------------- adoption


def adoption_project(node: Node) -> str | None:
    """Who owns the adopted server: `instance_info/project_id` (what Nova writes there), else
    `extra/kumo:project_id`, else the node's lessee, else its owner."""
    info, extra = node.instance_info or {}, node.extra or {}
    return (
        str(info.get("project_id") or extra.get("kumo:project_id") or node.lessee or node.owner or "") or None
    )


def adoption_flavor(session: Session, node: Node) -> Flavor:
    """`instance_info/flavor` (id or name) when given, else the first flavor asking for one unit
    of the node's resource class."""
    rc = hosts.resource_class_name(node)
    wanted = (node.instance_info or {}).get("flavor")
    if wanted:
        flavor = session.scalar(
            select(Flavor).where(or_(Flavor.id == str(wanted), Flavor.name == str(wanted)))
        )
        if flavor is None:
            raise BadRequest(
                f"Cannot adopt node {node.uuid}: flavor {wanted} (instance_info/flavor) not found."
            )
        return flavor
    for flavor in session.scalars(select(Flavor).order_by(Flavor.created_at, Flavor.id)):
        if rc and str((flavor.extra_specs or {}).get(f"resources:{rc}", "")) == "1":
            return flavor
    raise BadRequest(
        f"Cannot adopt node {node.uuid}: no flavor asks for resources:{rc}=1; create one or name it in "
        "instance_info/flavor."
    )


def _check_adoptable(session: Session, node: Node) -> None:
    if not node.resource_class:
        raise BadRequest(f"Cannot adopt node {node.uuid}: it has no resource_class.")
    if adoption_project(node) is None:
        raise BadRequest(
            f"Cannot adopt node {node.uuid}: set instance_info/project_id (or the node's lessee or owner) "
            "to the project that will own its server."
        )
    adoption_flavor(session, node)


def _adopt_server(session: Session, node: Node, power: str | None, request_id: str | None) -> Instance:
    """The server record of an adopted machine: ACTIVE on the node, holding its one unit."""
    flavor = adoption_flavor(session, node)
    info = node.instance_info or {}
    project_id = adoption_project(node) or ""
    zone = _zone_of(session, node)
    name = str(info.get("display_name") or node.name or f"adopted-{node.uuid[:8]}")
    instance = Instance(
        uuid=str(info.get("instance_uuid") or uuidlib.uuid4()),
        project_id=project_id,
        user_id=str(info.get("user_id") or "kumo-adoption"),
        name=name,
        hostname=re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "server",
        image_ref=str(info.get("image_source") or ""),
        flavor={
            "id": flavor.id,
            "name": flavor.name,
            "vcpus": flavor.vcpus,
            "ram": flavor.ram,
            "disk": flavor.disk,
            "ephemeral": flavor.ephemeral,
            "swap": flavor.swap,
            "extra_specs": dict(flavor.extra_specs or {}),
        },
        vcpus=flavor.vcpus,
        memory_mb=flavor.ram,
        availability_zone=zone,
        reservation_id="r-" + uuidlib.uuid4().hex[:8],
    )
    session.add(instance)
    # After the INSERT: a task_state None given then would take the column's default.
    session.flush()
    provider = session.scalar(
        select(ResourceProvider)
        .join(ComputeHost, ComputeHost.provider_id == ResourceProvider.id)
        .where(ComputeHost.name == node.uuid)
    )
    if provider is not None:
        claims.claim(session, provider.id, provider.generation, instance.uuid, resources_of(instance.flavor))
    change = lc.adopted(power != states.POWER_OFF, node.uuid)
    apply(session, instance, change, Requester(request_id or "-", None, project_id))
    return instance


def _zone_of(session: Session, node: Node) -> str:
    return availability_zone_of(session, node.uuid)


# ---------------------------------------------------------------------------- task hooks


def _node_of_task(session: Session, task: Task) -> Node | None:
    if not may_be_node(task.host):
        return None
    return session.scalar(select(Node).where(Node.uuid == task.host))


def on_task_enqueued(session: Session, task: Task) -> None:
    """Runs for every task enqueued (see the module docstring)."""
    node = _node_of_task(session, task)
    if node is None or task.kind in QUESTION_TASKS:
        return
    if task.kind not in NODE_TASKS | SERVER_TASKS:
        raise Conflict(
            f"Baremetal server {task.instance_uuid} cannot {task.kind.replace('_', ' ')}: "
            "it is a physical machine."
        )
    label = node.name or node.uuid
    if task.kind in (TaskKind.SPAWN, TaskKind.REBUILD):
        event = states.DEPLOY if task.kind == TaskKind.SPAWN else states.REBUILD
        if not states.can(node.provision_state, event):
            raise Conflict(
                f'Node "{label}" is "{node.provision_state}": it cannot take server {task.instance_uuid}.'
            )
        _move(node, event)
        node.instance_uuid = task.instance_uuid
        spec = task.payload.get("instance") or {}
        node.instance_info = {
            **(node.instance_info or {}),
            "image_source": spec.get("image_ref"),
            "display_name": spec.get("name"),
            "project_id": spec.get("project_id"),
        }
        node.last_error = None
    elif task.kind == TaskKind.DELETE:
        if states.can(node.provision_state, states.UNDEPLOY):
            _move(node, states.UNDEPLOY)
            node.last_error = None
    extra: dict[str, Any] = {"node": node_for_conductor(node).model_dump()}
    deploy_timeout = (node.driver_info or {}).get("deploy_timeout")
    if task.kind in (TaskKind.SPAWN, TaskKind.REBUILD):
        extra["image_ref"] = task.payload.get("image_ref") or (task.payload.get("instance") or {}).get(
            "image_ref"
        )
        if deploy_timeout is not None:
            extra["deploy_timeout"] = deploy_timeout
    task.payload = {**(task.payload or {}), **extra}
    hosts.sync_inventory(session, node)


def settle(session: Session, task: Task, ok: bool, result: dict[str, Any]) -> None:
    """Runs for every result, before the server's settling; moves the node of a node's task."""
    node = _node_of_task(session, task)
    if node is None or task.kind in QUESTION_TASKS:
        return
    # The agents' results merge `details` into the result, so a conductor's
    # details.power_state ("power on") arrives as result["power_state"]: that is the node's; the
    # instance's settling (which runs after this) gets the matching integer back.
    raw = result.get("power_state")
    power = raw if isinstance(raw, str) else _power_name(raw)
    if isinstance(raw, str):
        result["power_state"] = int(_INSTANCE_POWER[raw]) if raw in _INSTANCE_POWER else None
    error = None if ok else str(result.get("error") or task.error or "unknown error")
    if power in states.POWER_STATES:
        node.power_state = power
    kind = TaskKind(task.kind)
    if kind == TaskKind.NODE_POWER:
        node.target_power_state = None
        if not ok:
            node.last_error = f"Failed to change power state to {task.payload.get('target')}: {error}"
        elif node.instance_uuid and power in _INSTANCE_POWER:
            # The server on the node follows at once (its next power sync would say the same).
            instance = session.scalar(select(Instance).where(Instance.uuid == node.instance_uuid))
            if instance is not None:
                write(instance, lc.power_observed(state_of(instance), int(_INSTANCE_POWER[power])))
    elif kind in (
        TaskKind.NODE_VERIFY,
        TaskKind.NODE_CLEAN,
        TaskKind.NODE_ADOPT,
        TaskKind.SPAWN,
        TaskKind.REBUILD,
    ):
        expected = {
            TaskKind.NODE_VERIFY: states.VERIFYING,
            TaskKind.NODE_CLEAN: states.CLEANING,
            TaskKind.NODE_ADOPT: states.ADOPTING,
            TaskKind.SPAWN: states.DEPLOYING,
            TaskKind.REBUILD: states.DEPLOYING,
        }[kind]
        if node.provision_state not in (expected, states.DEPLOY_WAIT):
            log.info("node %s: %s result ignored in state %s", node.uuid, kind, node.provision_state)
            return
        _move(node, states.DONE if ok else states.FAIL)
        if not ok:
            node.last_error = f"{_WHAT[kind]} failed: {error}"
            if kind in (TaskKind.SPAWN, TaskKind.REBUILD):
                node.fault = None
        elif kind == TaskKind.NODE_ADOPT:
            instance = _adopt_server(session, node, power, task.request_id)
            node.instance_uuid = instance.uuid
    elif kind == TaskKind.DELETE:
        if node.provision_state != states.DELETING:
            log.info("node %s: delete result ignored in state %s", node.uuid, node.provision_state)
            return
        if ok:
            _move(node, states.DONE)  # deleting → cleaning (the conductor cleaned in the same task)
            _move(node, states.DONE)  # cleaning → available
            node.instance_uuid = None
            node.instance_info = {}
        else:
            _move(node, states.FAIL)
            node.last_error = f"Tearing down the instance failed: {error}"
    if node.provision_state in states.STABLE:
        node.target_provision_state = None
    hosts.sync_inventory(session, node)


_WHAT = {
    TaskKind.NODE_VERIFY: "Verifying the BMC",
    TaskKind.NODE_CLEAN: "Cleaning",
    TaskKind.NODE_ADOPT: "Adoption",
    TaskKind.SPAWN: "Deploy",
    TaskKind.REBUILD: "Redeploy",
}


_INSTANCE_POWER = {states.POWER_ON: PowerState.RUNNING, states.POWER_OFF: PowerState.SHUTDOWN}


def _power_name(power: Any) -> str | None:
    if power is None:
        return None
    try:
        value = PowerState(int(power))
    except ValueError:
        return None
    if value == PowerState.RUNNING:
        return states.POWER_ON
    if value == PowerState.SHUTDOWN:
        return states.POWER_OFF
    return None


class NodeWorkHooks:
    """Baremetal's kumo.work.hooks.WorkHooks: nodes move with the work enqueued for them and
    with their conductors' reports."""

    def late(self, session: Session, task: Task, result: dict[str, Any]) -> None:
        return None

    def on_enqueued(self, session: Session, task: Task) -> None:
        on_task_enqueued(session, task)

    def settle(self, session: Session, task: Task, ok: bool, result: dict[str, Any]) -> None:
        settle(session, task, ok, result)


HOOKS = NodeWorkHooks()
