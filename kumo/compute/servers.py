"""Servers: create, list, show, update, delete. Actions on servers live in server_ops.py."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Row, Select, Text, and_, cast, null, or_, select, tuple_
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import flavors, hosts, keypairs, quotas, server_networks, states
from kumo.compute import lifecycle as lc
from kumo.compute.aggregates import zone_exists
from kumo.compute.lifecycle_apply import apply, state_of
from kumo.compute.models import ComputeHost, Flavor, Instance, ServerGroup, ServerGroupMember
from kumo.compute.node_hosts import may_be_node
from kumo.config import get_settings
from kumo.db import utcnow
from kumo.errors import BadRequest, Forbidden, NotFound
from kumo.image.service import get_image_for_boot
from kumo.store.protocol import store_of
from kumo.tags import TagFilter
from kumo.work.kinds import TaskKind
from kumo.work.models import Task

_HOSTNAME_BAD = re.compile(r"[^a-z0-9-]+")
MAX_USER_DATA = 65535
_METADATA_KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")  # Nova's metadata key pattern


@dataclass
class CreateRequest:
    name: str
    flavor_ref: str
    image_ref: str
    availability_zone: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    key_name: str | None = None
    user_data: str | None = None
    admin_pass: str | None = field(default=None, repr=False)  # for the guest's metadata only
    description: str | None = None
    scheduler_hints: dict[str, Any] = field(default_factory=dict)
    min_count: int = 1
    max_count: int = 1
    access_ip_v4: str = ""
    access_ip_v6: str = ""
    config_drive: bool = False
    tags: list[str] = field(default_factory=list)
    return_reservation_id: bool = False
    # Nova's `networks` (kumo.compute.server_networks.parse_networks) and `security_groups`
    # (names or ids; None: the project's default group) for the ports the create makes.
    networks: server_networks.Requested = "auto"
    security_groups: list[str] | None = None
    hostname: str | None = None  # 2.90
    # 2.74 (admin): a destination the scheduler's filters still check
    requested_host: str | None = None
    requested_node: str | None = None


def _hostname(name: str) -> str:
    host = _HOSTNAME_BAD.sub("-", name.lower()).strip("-.")[:63]
    return host or "server"


def validate_metadata(metadata: Any) -> dict[str, str]:
    if not isinstance(metadata, dict):
        raise BadRequest("Invalid input for field/attribute metadata. Value must be an object.")
    for key, value in metadata.items():
        if not isinstance(key, str) or not _METADATA_KEY.fullmatch(key):
            raise BadRequest(
                "Invalid input for field/attribute metadata. Keys must be 1-255 characters of "
                "'a-zA-Z0-9-_:. '."
            )
        if not isinstance(value, str) or len(value) > 255:
            raise BadRequest(
                f"Invalid input for field/attribute metadata. Value of {key} must be a string "
                "of at most 255 characters."
            )
    return dict(metadata)


def access_ip(value: Any, field: str, version: int) -> str:
    """Nova's accessIPv4/accessIPv6: an address of that IP version, or empty, normalized as Nova
    stores it (an IPv6 address compressed: `::babe:67.23.10.132` is `::babe:4317:a84`).
    (Unchecked, any value reached the 64-character column: a 500 on PostgreSQL, and a body that
    broke the response schema everywhere.)"""
    if value is None or value == "":
        return ""
    try:
        address = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is None or address.version != version or "%" in value:  # no IPv6 scope ids
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. '{value}' is not a 'ipv{version}'"
        )
    return str(address)


def description_of(value: Any) -> str | None:
    """Nova's server description (2.19): a string of at most 255 characters, or null. (On
    update, a list or an object went on to the database: a 500 on PostgreSQL.)"""
    if value is not None and (not isinstance(value, str) or len(value) > 255):
        raise BadRequest(f"Invalid input for field/attribute description. Value: {value!r}.")
    return value


def user_data_of(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_USER_DATA:
        raise BadRequest(
            "User data too large. User data must be no larger than 65535 bytes once base64 encoded."
        )
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(
            "Invalid input for field/attribute user_data. Value must be base64 encoded."
        ) from None
    return value


def _group_from_hints(session: Session, ctx: RequestContext, hints: dict[str, Any]) -> ServerGroup | None:
    group_id = hints.get("group")
    if group_id is None:
        return None
    if isinstance(group_id, list):
        group_id = group_id[0] if group_id else None
    group = session.scalar(select(ServerGroup).where(ServerGroup.uuid == str(group_id)))
    if group is None or not ctx.owns(group.project_id):
        raise BadRequest(f"Invalid input for field/attribute group. Server group {group_id} not found.")
    return group


def create(session: Session, ctx: RequestContext, req: CreateRequest) -> list[Instance]:
    """Validate, check quota, write BUILD/scheduling instances and their create actions.

    The scheduler loop picks them up after commit; nothing here chooses a host.
    """
    ctx.require_writer()
    project_id = ctx.require_project("os_compute_api:servers:create")
    access_ips = access_ip(req.access_ip_v4, "accessIPv4", 4), access_ip(req.access_ip_v6, "accessIPv6", 6)
    flavor: Flavor = flavors.get_flavor_for_boot(session, ctx, req.flavor_ref)
    image = get_image_for_boot(session, ctx, req.image_ref)
    if image.min_ram and flavor.ram < image.min_ram:
        raise BadRequest("Flavor's memory is too small for requested image.")
    if image.min_disk and flavor.disk and flavor.disk < image.min_disk:
        raise BadRequest("Flavor's disk is too small for requested image.")
    forced_host = None
    zone = req.availability_zone
    if zone and ":" in zone:
        if not ctx.is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:servers:create:forced_host to be performed.")
        zone, _, forced_host = zone.partition(":")
        zone = zone or None
    if zone:
        if not zone_exists(session, zone):
            raise BadRequest("The requested availability zone is not available")
    destination = _requested_destination(session, ctx, req, forced_host is not None)
    if req.hostname and req.max_count > 1:
        raise BadRequest("Unable to allocate a single hostname to multiple instances")
    key_data = None
    if req.key_name:
        key = keypairs.get_keypair_for_boot(session, ctx, req.key_name)
        key_data = key.public_key
    if req.min_count < 1 or req.max_count < req.min_count:
        raise BadRequest("min_count must be <= max_count and both at least 1")
    count = req.max_count
    quotas.check_instance_quota(session, project_id, count, flavor.vcpus * count, flavor.ram * count)
    group = _group_from_hints(session, ctx, req.scheduler_hints)
    hints = dict(req.scheduler_hints)
    if forced_host:
        hints["force_host"] = forced_host
    if destination:
        hints["requested_host"] = destination
    reservation_id = "r-" + secrets.token_hex(4)
    flavor_snapshot = flavors.snapshot(flavor)
    metadata = validate_metadata(req.metadata)
    quotas.check_metadata_items(session, project_id, len(metadata))
    created = []
    for index in range(count):
        name = req.name if count == 1 else f"{req.name}-{index + 1}"
        instance = Instance(
            uuid=str(uuid.uuid4()),
            project_id=project_id,
            user_id=ctx.user_id,
            name=name,
            description=req.description,
            hostname=req.hostname or _hostname(name),
            image_ref=image.id,
            flavor=flavor_snapshot,
            vcpus=flavor.vcpus,
            memory_mb=flavor.ram,
            requested_az=zone,
            availability_zone=zone,
            key_name=req.key_name,
            key_data=key_data,
            user_data=user_data_of(req.user_data),
            admin_pass=req.admin_pass,
            access_ip_v4=access_ips[0],
            access_ip_v6=access_ips[1],
            config_drive="True" if req.config_drive else "",
            metadata_=dict(metadata),
            tags=list(req.tags),
            scheduler_hints=hints,
            server_group=group.uuid if group else None,
            launch_index=index,
            reservation_id=reservation_id,
        )
        session.add(instance)
        if group is not None:
            session.add(ServerGroupMember(group_uuid=group.uuid, instance_uuid=instance.uuid))
        apply(session, instance, lc.created(), ctx)
        server_networks.allocate(
            session,
            ctx,
            instance.uuid,
            instance.project_id,
            req.networks,
            zone or "nova",
            req.security_groups,
        )
        created.append(instance)
    return created


def _requested_destination(
    session: Session, ctx: RequestContext, req: CreateRequest, forced: bool
) -> str | None:
    """2.74's `host`/`hypervisor_hostname`: admins only; the host must exist (in kumo a host is
    its one hypervisor, so both name it); not with an availability zone's `zone:host`. Unlike a
    forced host, the scheduler's filters all still run on it."""
    if req.requested_host is None and req.requested_node is None:
        return None
    if not ctx.is_admin:
        raise Forbidden("Policy doesn't allow compute:servers:create:requested_destination to be performed.")
    if forced:
        raise BadRequest(
            "One mechanism with host and/or hypervisor_hostname and another mechanism with "
            "zone:host:node are mutually exclusive."
        )
    name = req.requested_host or req.requested_node
    if session.scalar(select(ComputeHost.id).where(ComputeHost.name == name)) is None:
        raise BadRequest(f"Compute host {name} could not be found.")
    if req.requested_node is not None and req.requested_node != name:
        raise BadRequest(f"Compute host {req.requested_node} could not be found.")
    return name


def get(
    session: Session,
    ctx: RequestContext,
    server_id: str,
    include_deleted: bool = False,
    for_update: bool = False,
) -> Instance:
    """`for_update`: lock the row until the transaction ends (PostgreSQL; SQLite's writing
    transaction already holds the whole database), and read it as it is once the lock is had.
    For changes made from what is read (delete, evacuate, reset-state): a scheduler placing the
    instance holds that lock, so the change waits for the placement and sees its host."""
    stmt = select(Instance).where(Instance.uuid == server_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    instance = session.scalar(stmt)
    if instance is None or not ctx.owns(instance.project_id) or (instance.deleted and not include_deleted):
        raise NotFound(f"Instance {server_id} could not be found.")
    return instance


@dataclass
class ListQuery:
    limit: int | None = None
    marker: str | None = None
    name: str | None = None
    status: str | None = None
    host: str | None = None
    flavor: str | None = None
    image: str | None = None
    availability_zone: str | None = None
    reservation_id: str | None = None  # the servers of one multiple create (every version)
    changes_since: dt.datetime | None = None
    changes_before: dt.datetime | None = None  # 2.66
    locked: bool | None = None  # 2.73
    hostname: str | None = None  # a regular expression, as `name` (2.90 for non-admins)
    # 2.83 (admins: every version)
    key_name: str | None = None
    config_drive: str | None = None
    vm_state: str | None = None
    task_state: str | None = None
    power_state: int | None = None
    progress: int | None = None
    created_at: dt.datetime | None = None
    launched_at: dt.datetime | None = None
    terminated_at: dt.datetime | None = None
    all_tenants: bool = False
    project_id: str | None = None
    user_id: str | None = None
    deleted: bool = False
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    tags: TagFilter = field(default_factory=TagFilter)


_SORT_KEYS = {
    "created_at": Instance.created_at,
    "updated_at": Instance.updated_at,
    "display_name": Instance.name,
    "name": Instance.name,
    "uuid": Instance.uuid,
    "vm_state": Instance.vm_state,
    "host": Instance.host,
    "launched_at": Instance.launched_at,
    "locked": Instance.locked,  # 2.73
}

# The query parameters Nova's GET /servers schema names; from 2.75 any other is a 400 (before,
# Nova ignores them). kumo filters by those it keeps a column for and ignores the rest as Nova
# ignores a filter a non-admin may not use.
LIST_PARAMS = frozenset(
    {
        "user_id", "project_id", "tenant_id", "launch_index", "image_ref", "image", "kernel_id",
        "ramdisk_id", "hostname", "key_name", "power_state", "vm_state", "task_state", "host",
        "node", "flavor", "reservation_id", "launched_at", "terminated_at", "availability_zone",
        "name", "display_name", "description", "display_description", "locked_by", "uuid",
        "root_device_name", "config_drive", "access_ip_v4", "access_ip_v6", "auto_disk_config",
        "progress", "sort_key", "sort_dir", "all_tenants", "soft_deleted", "deleted", "status",
        "changes-since", "ip", "ip6", "created_at", "block_device_mapping", "services",
        "metadata", "pci_devices", "info_cache", "security_groups", "limit", "marker", "tags",
        "tags-any", "not-tags", "not-tags-any", "changes-before", "locked", "system_metadata",
    }
)  # fmt: skip


def check_list_params(names: Iterable[str]) -> None:
    """2.75: a query parameter GET /servers does not know is a 400."""
    unknown = sorted(set(names) - LIST_PARAMS)
    if unknown:
        listed = ", ".join(f"'{name}'" for name in unknown)
        raise BadRequest(
            f"Invalid input for query parameters {unknown[0]}. Additional properties are not allowed "
            f"({listed} {'were' if len(unknown) > 1 else 'was'} unexpected)"
        )


def _apply_filters(stmt: Select[Any], ctx: RequestContext, q: ListQuery) -> Select[Any]:
    if q.all_tenants and ctx.is_admin:
        if q.project_id:
            stmt = stmt.where(Instance.project_id == q.project_id)
    else:
        stmt = stmt.where(Instance.project_id == ctx.require_project("os_compute_api:servers:index"))
    if q.deleted and ctx.is_admin:
        stmt = stmt.where(Instance.deleted.is_(True))
    elif q.changes_since is None and q.changes_before is None:
        # IS NOT TRUE, not = FALSE (the same for this NOT NULL column): without statistics
        # SQLite takes an equality on the deleted index for selective and sorts every live
        # instance for a page; this way it walks the list's order index.
        stmt = stmt.where(Instance.deleted.is_not(True))
    if q.changes_since is not None:
        stmt = stmt.where(Instance.updated_at >= q.changes_since)
    if q.changes_before is not None:
        stmt = stmt.where(Instance.updated_at <= q.changes_before)
    if q.locked is not None:
        stmt = stmt.where(Instance.locked.is_(q.locked))
    stmt = _owner_filters(stmt, q)
    if q.status:
        status = q.status.upper()
        vm_states = states.VM_STATES_BY_STATUS.get(status)
        if vm_states is None:
            vm_states = ("__none__",)
        stmt = stmt.where(Instance.vm_state.in_(vm_states))
    if q.host and ctx.is_admin:
        stmt = stmt.where(Instance.host == q.host)
    if q.flavor:
        stmt = stmt.where(Instance.flavor["id"].as_string() == q.flavor)
    if q.image:
        stmt = stmt.where(Instance.image_ref == q.image)
    if q.availability_zone:
        stmt = stmt.where(Instance.availability_zone == q.availability_zone)
    if q.reservation_id:
        stmt = stmt.where(Instance.reservation_id == q.reservation_id)
    if q.user_id:
        stmt = stmt.where(Instance.user_id == q.user_id)
    return stmt


def _owner_filters(stmt: Select[Any], q: ListQuery) -> Select[Any]:
    """2.83's filters: exact matches on the instance's columns."""
    if q.key_name is not None:
        stmt = stmt.where(Instance.key_name == q.key_name)
    if q.config_drive is not None:
        wanted = "True" if q.config_drive.strip().lower() in ("1", "t", "true", "on", "y", "yes") else ""
        stmt = stmt.where(Instance.config_drive == wanted)
    if q.vm_state is not None:
        stmt = stmt.where(Instance.vm_state == q.vm_state)
    if q.task_state is not None:
        stmt = stmt.where(Instance.task_state == q.task_state)
    if q.power_state is not None:
        stmt = stmt.where(Instance.power_state == q.power_state)
    if q.progress is not None:
        stmt = stmt.where(Instance.progress == q.progress)
    for column, value in (
        (Instance.created_at, q.created_at),
        (Instance.launched_at, q.launched_at),
        (Instance.terminated_at, q.terminated_at),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


# A page of servers reads the columns its view shows, not whole instances (loading 1,000 ORM
# instances was a third of the page's CPU). JSON columns come as their stored text: a page
# repeats the same few flavors and metadata, and the view decodes each distinct text once.
_JSON_COLUMNS = frozenset({"flavor", "metadata_", "tags", "fault"})
BRIEF_FIELDS = ("id", "uuid", "name", "tags", "hostname")


def _list_columns(fields: tuple[str, ...], user_data: bool) -> list[Any]:
    columns: list[Any] = []
    for name in fields:
        if name in _JSON_COLUMNS:
            columns.append(cast(getattr(Instance, name), Text).label(name))
        elif name == "user_data" and not user_data:
            columns.append(null().label(name))
        else:
            columns.append(getattr(Instance, name).label(name))
    return columns


def _decoded(raw: str | None) -> Any:
    return orjson.loads(raw) if raw else None


def list_servers(
    session: Session,
    ctx: RequestContext,
    q: ListQuery,
    fields: tuple[str, ...] = BRIEF_FIELDS,
    user_data: bool = False,
) -> list[Row[Any]]:
    """One page of servers: rows of Instance's `fields`, in that order and by those names (the
    filters here read uuid, name, tags and hostname). JSON columns come as their stored text; user_data is
    None unless `user_data` (up to 64 KB a server, shown to admins only)."""
    if not {"uuid", "name", "tags", "hostname"} <= set(fields):
        raise ValueError("a server list reads uuid, name, tags and hostname")
    if q.sort_key not in _SORT_KEYS:
        raise BadRequest(f"Invalid sort_key {q.sort_key}")
    if q.sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort_dir {q.sort_dir}")
    column = _SORT_KEYS[q.sort_key]
    desc = q.sort_dir == "desc"
    stmt = _apply_filters(select(*_list_columns(fields, user_data)), ctx, q)
    if q.marker:
        marker = session.execute(select(column, Instance.id).where(Instance.uuid == q.marker)).first()
        if marker is None:
            raise BadRequest(f"marker [{q.marker}] not found")
        value, marker_id = marker
        if value is not None:
            # A row comparison: the (project_id, created_at, id) and (created_at, id) indexes
            # start the scan at the marker (the OR form below filtered every row before it).
            key = tuple_(column, Instance.id)
            after = tuple_(value, marker_id, types=(column.type, Instance.id.type))
            stmt = stmt.where(key < after if desc else key > after)
        elif desc:
            stmt = stmt.where(or_(column < value, and_(column == value, Instance.id < marker_id)))
        else:
            stmt = stmt.where(or_(column > value, and_(column == value, Instance.id > marker_id)))
    stmt = stmt.order_by(
        column.desc() if desc else column.asc(), Instance.id.desc() if desc else Instance.id.asc()
    )
    if q.limit is not None:
        stmt = stmt.limit(q.limit)
    # Core rows, fetched at once: the ORM's result would call a getter per column per row, and
    # iterating a result fetches row by row.
    rows = list(session.connection().execute(stmt).all())
    if q.name:
        try:
            pattern = re.compile(q.name)
        except re.error:
            raise BadRequest(f"Invalid name filter {q.name}") from None
        rows = [r for r in rows if pattern.search(r.name)]
    if q.hostname:
        try:
            host_pattern = re.compile(q.hostname)
        except re.error:
            raise BadRequest(f"Invalid hostname filter {q.hostname}") from None
        rows = [r for r in rows if host_pattern.search(r.hostname or "")]
    if q.tags:
        rows = [r for r in rows if q.tags.matches(_decoded(r.tags) or [])]
    return rows


def update(session: Session, ctx: RequestContext, server_id: str, changes: dict[str, Any]) -> Instance:
    ctx.require_writer()
    instance = get(session, ctx, server_id)
    if "name" in changes:
        instance.name = changes["name"]
        instance.hostname = _hostname(changes["name"])
    if "hostname" in changes:  # 2.90, checked by params.hostname_value
        instance.hostname = changes["hostname"]
    if "description" in changes:
        instance.description = description_of(changes["description"])
    if "accessIPv4" in changes:
        instance.access_ip_v4 = access_ip(changes["accessIPv4"], "accessIPv4", 4)
    if "accessIPv6" in changes:
        instance.access_ip_v6 = access_ip(changes["accessIPv6"], "accessIPv6", 6)
    return instance


def delete(
    session: Session, ctx: RequestContext, server_id: str, force: bool = False
) -> tuple[Instance, str | None]:
    """Start deleting (`force`: forceDelete, even while a delete is in flight). Returns the
    instance and the host whose agent must be woken (if any). When the instance's host is down
    the API deletes it itself (lifecycle.delete: a local delete) and leaves the host a clean-up
    task."""
    ctx.require_writer()
    instance = get(session, ctx, server_id, for_update=True)
    state = state_of(instance)
    dest = _move_destination(session, instance) if lc.moving(state) else None
    change = lc.delete(
        state,
        is_admin=ctx.is_admin,
        force=force,
        host_down=_deleted_locally(session, instance),
        move_destination=dest,
    )
    return instance, apply(session, instance, change, ctx).wake


def _deleted_locally(session: Session, instance: Instance) -> bool:
    """Nova's rule: no host, or a hypervisor whose service is down (heartbeat too old, or forced
    down). A baremetal node's delete always goes through its conductor (the node must be torn
    down and cleaned before it takes another server)."""
    if instance.host is None:
        return True
    return not may_be_node(instance.host) and not hosts.host_is_up(session, instance.host)


def _move_destination(session: Session, instance: Instance) -> str | None:
    """The destination of the move in flight: its prepare_migration may have left a disk or an
    instance directory there, which only an `abort_migration` removes."""
    payload = session.scalar(
        select(Task.payload)
        .where(Task.instance_uuid == instance.uuid, Task.kind == str(TaskKind.PREPARE_MIGRATION))
        .order_by(Task.created_at.desc())
        .limit(1)
    )
    dest = payload.get("dest") if isinstance(payload, dict) else None
    return dest if isinstance(dest, str) and dest != instance.host else None


def set_metadata(
    session: Session, ctx: RequestContext, server_id: str, new: dict[str, str], replace: bool
) -> dict[str, str]:
    ctx.require_writer()
    instance = get(session, ctx, server_id)
    merged = dict(new) if replace else {**(instance.metadata_ or {}), **new}
    quotas.check_metadata_items(session, instance.project_id, len(merged))
    instance.metadata_ = merged
    return merged


def delete_metadata_key(session: Session, ctx: RequestContext, server_id: str, key: str) -> None:
    ctx.require_writer()
    instance = get(session, ctx, server_id)
    metadata = dict(instance.metadata_ or {})
    if key not in metadata:
        raise NotFound("Metadata item was not found")
    del metadata[key]
    instance.metadata_ = metadata


def hosts_up(session: Session, names: set[str]) -> dict[str, bool]:
    """Whether each host is up, as `hosts.is_up` decides (tests/unit/compute/
    test_server_list_page.py checks they agree). Reads two columns, not whole hosts: a page of
    1,000 servers may be on 1,000 hosts."""
    if not names:
        return {}
    now = utcnow()
    timeout = get_settings().heartbeat_timeout_seconds
    rows = session.execute(
        select(ComputeHost.name, ComputeHost.forced_down, ComputeHost.last_heartbeat).where(
            store_of(session).one_of(ComputeHost.name, names)
        )
    )
    return {name: hosts.beating(beat, forced_down, now, timeout) for name, forced_down, beat in rows}
