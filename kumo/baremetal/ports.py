"""Ironic ports: a node's NICs, by MAC address (`/v1/ports`, `/v1/nodes/{node}/ports`).

Invariants:
- An address is a valid unicast MAC, stored lower-case with colons, and unique in the cloud
  (Ironic's MACAlreadyExists, 409). A port belongs to one existing node (by its uuid on create
  and patch; a missing node is a 400, as Ironic answers it).
- A port whose node holds a server (and is not in maintenance) keeps its address, node and
  pxe_enabled, and cannot be deleted: the server's Neutron ports carry its MAC.
- A node's ports go with the node (kumo.baremetal.service.delete_node).
- `macs_for_binding` is what kumo.network binds a server's ports with on a node (registered by
  kumo.wiring): the node's MACs, pxe_enabled ports first, then by age.
Admin only, as Ironic's default policy for baremetal:port:*.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.baremetal.microversion import (
    FIELDS_PARAM,
    PORT_DETAIL_PARAM,
    PORT_FIELDS,
    PORT_FIELDS_SINCE,
    Version,
)
from kumo.baremetal.models import Node, NodePort
from kumo.baremetal.service import apply_patch, get_node, parse_bool
from kumo.compute.node_hosts import is_uuid
from kumo.db import keyset
from kumo.errors import BadRequest, Conflict, NotAcceptable, NotFound
from kumo.network.addressing import normalise_mac
from kumo.network.errors import InvalidInput

# Fields a client may give at creation, beside address and node_uuid.
CREATE_FIELDS = frozenset(
    {
        "uuid",
        "address",
        "node_uuid",
        "extra",
        "pxe_enabled",
        "local_link_connection",
        "physical_network",
        "portgroup_uuid",
        "is_smartnic",
    }
)
PATCHABLE = ("address", "node_uuid", "extra", "pxe_enabled", "local_link_connection", "physical_network")
DICT_FIELDS = ("extra", "local_link_connection")
# Ironic's local_link_connection keys (network_type from 1.64).
LLC_KEYS = frozenset({"switch_id", "port_id", "switch_info", "network_type"})
_SORT = {
    "id": NodePort.id,
    "uuid": NodePort.uuid,
    "address": NodePort.address,
    "created_at": NodePort.created_at,
    "updated_at": NodePort.updated_at,
}


def _mac(value: Any) -> str:
    try:
        return normalise_mac(value)
    except InvalidInput:
        raise BadRequest(f"Expected a MAC address but received {value}.") from None


def _node_by_uuid(session: Session, node_uuid: Any) -> Node:
    """The node a port names: by uuid; a missing one is the request's fault (400, as Ironic)."""
    if not isinstance(node_uuid, str) or not is_uuid(node_uuid):
        raise BadRequest(f"Expected a UUID for node_uuid but received {node_uuid}.")
    node = session.scalar(select(Node).where(Node.uuid == str(uuidlib.UUID(node_uuid))))
    if node is None:
        raise BadRequest(f"Node {node_uuid} could not be found.")
    return node


def _check_version(body: dict[str, Any], version: Version) -> None:
    for key in body:
        since = PORT_FIELDS_SINCE.get(key)
        if since is not None and not version.at_least(since):
            raise NotAcceptable(f"The field {key} needs API version {since[0]}.{since[1]} or later.")


def _dict(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value!r}. Expected a dictionary."
        )
    return dict(value)


def _local_link(value: Any) -> dict[str, Any]:
    """Ironic's rule: known keys only; a non-empty one names switch_id (a MAC) and port_id,
    unless its network_type is "unmanaged"."""
    llc = _dict(value, "local_link_connection")
    unknown = sorted(set(llc) - LLC_KEYS)
    if unknown:
        raise BadRequest(f"Invalid local_link_connection keys: {', '.join(unknown)}.")
    if not llc or llc.get("network_type") == "unmanaged":
        return llc
    missing = sorted({"switch_id", "port_id"} - set(llc))
    if missing:
        raise BadRequest(f"Missing mandatory keys in local_link_connection: {', '.join(missing)}.")
    try:
        llc["switch_id"] = normalise_mac(llc["switch_id"])
    except InvalidInput:
        raise BadRequest(f"Expected a MAC address for switch_id but received {llc['switch_id']}.") from None
    return llc


def _bool(value: Any, field: str) -> bool:
    if value is None:
        return True  # Ironic's default
    if isinstance(value, bool):
        return value
    parsed = parse_bool(value, field) if isinstance(value, str) else None
    if parsed is None:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value!r}. Expected a boolean.")
    return parsed


def _physical_network(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise BadRequest(f"Invalid input for field/attribute physical_network. Value: {value!r}.")
    return value or None


def _address_taken(session: Session, address: str, port_id: int | None = None) -> bool:
    stmt = select(NodePort.id).where(NodePort.address == address)
    if port_id is not None:
        stmt = stmt.where(NodePort.id != port_id)
    return session.scalar(stmt.limit(1)) is not None


def _exists(address: str) -> Conflict:
    return Conflict(f"A port with MAC address {address} already exists.")


def _write(session: Session, port: NodePort) -> None:
    """Flush `port`; another request writing the same address at once is the same 409."""
    try:
        with session.begin_nested():
            session.add(port)
            session.flush()
    except IntegrityError:
        raise _exists(port.address) from None


def _held(node: Node) -> bool:
    return node.instance_uuid is not None and not node.maintenance


# ---------------------------------------------------------------------------- reading


def get_port(session: Session, ctx: RequestContext, ident: str) -> tuple[NodePort, Node]:
    ctx.require_admin()
    if not is_uuid(ident):
        raise BadRequest(f"Expected a UUID but received {ident}.")
    stmt = (
        select(NodePort, Node)
        .join(Node, Node.id == NodePort.node_id)
        .where(NodePort.uuid == str(uuidlib.UUID(ident)))
    )
    found = session.execute(stmt).first()
    if found is None:
        raise NotFound(f"Port {ident} could not be found.")
    return found[0], found[1]


def _lock(session: Session, port: NodePort, node_ids: set[int]) -> dict[int, Node]:
    """Lock the rows of the nodes `node_ids` in id order, then the port's, and re-read them all.

    Every writer of a port locks this way (nodes first, by id; macs_for_binding and node deletion
    lock the node alone), so two patches moving ports between the same two nodes in opposite
    directions queue one behind the other instead of deadlocking. The port must still be on a
    node of `node_ids` (a patch committed meanwhile may have moved it): else a 409, to retry."""
    fresh = dict(populate_existing=True)
    nodes = session.scalars(
        select(Node)
        .where(Node.id.in_(node_ids))
        .order_by(Node.id)
        .with_for_update()
        .execution_options(**fresh)
    )
    locked = {node.id: node for node in nodes}
    current = session.scalar(
        select(NodePort).where(NodePort.id == port.id).with_for_update().execution_options(**fresh)
    )
    if current is None:
        raise NotFound(f"Port {port.uuid} could not be found.")
    if current.node_id not in locked:
        raise Conflict(f"Port {port.uuid} was moved to another node while being changed; try again.")
    return locked


def show_port(
    session: Session, ctx: RequestContext, ident: str, fields: list[str] | None, version: Version
) -> tuple[NodePort, Node]:
    """GET /v1/ports/{uuid}, `fields` checked as a list's."""
    ctx.require_admin()
    check_fields(fields, False, version)
    return get_port(session, ctx, ident)


@dataclass(frozen=True)
class PortQuery:
    version: Version
    detail: bool = False
    detail_param: bool = False  # asked as ?detail=true (1.43), not by the /detail path
    fields: list[str] | None = None
    node: str | None = None  # name or uuid
    node_uuid: str | None = None
    address: str | None = None
    limit: int | None = None
    marker: str | None = None
    sort_key: str = "id"
    sort_dir: str = "asc"


def list_ports(session: Session, ctx: RequestContext, q: PortQuery) -> list[tuple[NodePort, Node]]:
    ctx.require_admin()
    check_detail(q.detail_param, q.version)
    check_fields(q.fields, q.detail, q.version)
    if q.sort_key not in _SORT:
        raise BadRequest(f"The sort_key value {q.sort_key} is an invalid field for sorting")
    if q.sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort direction: {q.sort_dir}. Acceptable values are 'asc' or 'desc'")
    if q.limit is not None and q.limit < 0:
        raise BadRequest(f"Limit must be positive: {q.limit}")
    if q.node is not None and q.node_uuid is not None:
        raise BadRequest("Only one of node and node_uuid may be given.")
    stmt = select(NodePort, Node).join(Node, Node.id == NodePort.node_id)
    if q.node is not None or q.node_uuid is not None:
        node = get_node(session, ctx, str(q.node if q.node is not None else q.node_uuid))
        stmt = stmt.where(NodePort.node_id == node.id)
    if q.address is not None:
        stmt = stmt.where(NodePort.address == _mac(q.address))
    column, descending = _SORT[q.sort_key], q.sort_dir == "desc"
    if q.marker:
        marker = (
            session.scalar(select(NodePort).where(NodePort.uuid == q.marker)) if is_uuid(q.marker) else None
        )
        if marker is None:
            raise BadRequest(f"Marker {q.marker} could not be found.")
        stmt = stmt.where(
            keyset.after(column, NodePort.id, (getattr(marker, q.sort_key), marker.id), descending)
        )
    stmt = stmt.order_by(*keyset.order_by(column, NodePort.id, descending))
    if q.limit:
        stmt = stmt.limit(q.limit)
    return [(row[0], row[1]) for row in session.execute(stmt)]


def macs_for_binding(session: Session, node_uuid: str) -> list[str]:
    """The MACs a server's ports take on the node, in the order they are handed out. The
    node's row is locked first: a port patch or delete (which locks it too) either committed
    before, and its MAC is the one read, or waits and then sees the node held."""
    node_id = session.scalar(select(Node.id).where(Node.uuid == node_uuid).with_for_update())
    if node_id is None:
        return []
    return list(
        session.scalars(
            select(NodePort.address)
            .where(NodePort.node_id == node_id)
            .order_by(NodePort.pxe_enabled.desc(), NodePort.id)
        )
    )


# ---------------------------------------------------------------------------- writing


def create_port(session: Session, ctx: RequestContext, body: Any, version: Version) -> tuple[NodePort, Node]:
    ctx.require_admin()
    if not isinstance(body, dict):
        raise BadRequest("Invalid input: the request body must be a JSON object.")
    unknown = sorted(set(body) - CREATE_FIELDS)
    if unknown:
        raise BadRequest(f"Unknown attribute for argument port: {', '.join(unknown)}")
    _check_version(body, version)
    for field in ("address", "node_uuid"):
        if body.get(field) is None:
            raise BadRequest(f"Missing mandatory field: {field}")
    if body.get("portgroup_uuid") is not None:
        raise BadRequest("Port groups are not supported: portgroup_uuid must be null.")
    if body.get("is_smartnic") not in (None, False):
        raise BadRequest("Smart NICs are not supported: is_smartnic must be false.")
    port_uuid = body.get("uuid") or str(uuidlib.uuid4())
    if not isinstance(port_uuid, str) or not is_uuid(port_uuid):
        raise BadRequest(f"Expected a UUID but received {port_uuid}.")
    port_uuid = str(uuidlib.UUID(port_uuid))
    address = _mac(body["address"])
    node = _node_by_uuid(session, body["node_uuid"])
    if session.scalar(select(NodePort.id).where(NodePort.uuid == port_uuid)) is not None:
        raise Conflict(f"A port with UUID {port_uuid} already exists.")
    if _address_taken(session, address):
        raise _exists(address)
    port = NodePort(
        uuid=port_uuid,
        address=address,
        node_id=node.id,
        pxe_enabled=_bool(body.get("pxe_enabled"), "pxe_enabled"),
        extra=_dict(body.get("extra"), "extra"),
        local_link_connection=_local_link(body.get("local_link_connection")),
        physical_network=_physical_network(body.get("physical_network")),
    )
    _write(session, port)
    return port, node


def _doc(port: NodePort, node: Node, version: Version) -> dict[str, Any]:
    """The port as a patch sees it: the fields the request's version shows."""
    doc: dict[str, Any] = {
        "address": port.address,
        "node_uuid": node.uuid,
        "extra": dict(port.extra or {}),
        "pxe_enabled": port.pxe_enabled,
        "local_link_connection": dict(port.local_link_connection or {}),
        "physical_network": port.physical_network,
    }
    return {k: v for k, v in doc.items() if version.at_least(PORT_FIELDS_SINCE.get(k, (1, 1)))}


def update_port(
    session: Session, ctx: RequestContext, ident: str, patch: Any, version: Version
) -> tuple[NodePort, Node]:
    port, node = get_port(session, ctx, ident)
    named = apply_patch(_doc(port, node, version), patch, DICT_FIELDS)["node_uuid"]
    target = node if named == node.uuid else _node_by_uuid(session, named)
    locked = _lock(session, port, {node.id, target.id})
    node, target = locked[port.node_id], locked[target.id]  # the port is still on `node`
    doc = apply_patch(_doc(port, node, version), patch, DICT_FIELDS)
    address = _mac(doc["address"]) if doc["address"] is not None else None
    if address is None:
        raise BadRequest("Missing mandatory field: address")
    if doc["node_uuid"] != target.uuid:
        raise Conflict(f"Port {port.uuid} was moved to another node while being changed; try again.")
    pxe = _bool(doc.get("pxe_enabled", port.pxe_enabled), "pxe_enabled")
    if (address, target.id, pxe) != (port.address, port.node_id, port.pxe_enabled):
        for held in {node.id: node, target.id: target}.values():
            if _held(held):
                raise Conflict(
                    f"Port {port.uuid}: the address, node and pxe_enabled of a port of node {held.uuid} "
                    f"cannot change while it holds instance {held.instance_uuid} (set maintenance first)."
                )
    if address != port.address and _address_taken(session, address, port.id):
        raise _exists(address)
    port.address, port.node_id, port.pxe_enabled = address, target.id, pxe
    port.extra = _dict(doc["extra"], "extra")
    if "local_link_connection" in doc:
        port.local_link_connection = _local_link(doc["local_link_connection"])
    if "physical_network" in doc:
        port.physical_network = _physical_network(doc["physical_network"])
    _write(session, port)
    return port, target


def delete_port(session: Session, ctx: RequestContext, ident: str) -> None:
    port, node = get_port(session, ctx, ident)
    node = _lock(session, port, {node.id})[node.id]
    if _held(node):
        raise Conflict(
            f"Cannot delete port {port.uuid}: its node {node.uuid} holds instance {node.instance_uuid} "
            "(set maintenance first)."
        )
    session.delete(port)
    session.flush()


def check_fields(fields: list[str] | None, detail: bool, version: Version) -> None:
    """`?fields=` (from 1.8) names port fields only, and not together with `?detail=True`."""
    if not fields:
        return
    if not version.at_least(FIELDS_PARAM):
        raise NotAcceptable(f"The fields parameter needs API version 1.8 or later (asked: {version}).")
    if detail:
        raise BadRequest("Can not specify ?detail=True and fields in the same request.")
    unknown = [
        f for f in fields if f not in PORT_FIELDS or not version.at_least(PORT_FIELDS_SINCE.get(f, (1, 1)))
    ]
    if unknown:
        raise BadRequest(f'Field(s) "{", ".join(unknown)}" are not valid')


def check_detail(detail: bool, version: Version) -> None:
    if detail and not version.at_least(PORT_DETAIL_PARAM):
        raise NotAcceptable(f"The detail parameter needs API version 1.43 or later (asked: {version}).")
