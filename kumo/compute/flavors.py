"""Flavors, their extra specs and their access lists (Nova's flavors, flavor-manage,
os-extra_specs and os-flavor-access)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import extra_specs as extra_specs_rules
from kumo.compute import known_extra_specs, params
from kumo.compute.microversion import Microversion
from kumo.compute.models import Flavor, FlavorAccess
from kumo.errors import BadRequest, Conflict, NotFound
from kumo.identity.models import Project

DESCRIPTION_VERSION = "2.55"
EXTRA_SPECS_VERSION = "2.61"

_FLAVOR_ID_RE = re.compile(r"^(?! )[a-zA-Z0-9. _-]+(?<! )$")
_RXTX_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")
MAX_DESCRIPTION = 65535

# Nova's sort keys (flavor column names) mapped onto kumo's columns.
_SORT_KEYS: dict[str, Any] = {
    "flavorid": Flavor.id,
    "id": Flavor.id,
    "name": Flavor.name,
    "memory_mb": Flavor.ram,
    "vcpus": Flavor.vcpus,
    "root_gb": Flavor.disk,
    "ephemeral_gb": Flavor.ephemeral,
    "swap": Flavor.swap,
    "rxtx_factor": Flavor.rxtx_factor,
    "is_public": Flavor.is_public,
    "description": Flavor.description,
    "created_at": Flavor.created_at,
    "updated_at": Flavor.created_at,
    "disabled": Flavor.id,
    "vcpu_weight": Flavor.id,
}


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ListQuery:
    is_public: bool | None = True  # None: public and private alike (admin only)
    min_ram: int | None = None
    min_disk: int | None = None
    sort_key: str = "flavorid"
    sort_dir: str = "asc"
    limit: int | None = None
    marker: str | None = None


def parse_list_query(
    ctx: RequestContext,
    *,
    is_public: str | None,
    min_ram: str | None,
    min_disk: str | None,
    sort_key: str | None,
    sort_dir: str | None,
    limit: str | None,
    marker: str | None,
) -> ListQuery:
    """Nova's GET /flavors parameters. Only admins choose `is_public`: the default (and the
    only answer for everyone else) is public flavors plus the private ones shared with you."""
    public: bool | None = True
    if ctx.is_admin and is_public is not None:
        if is_public.strip().lower() == "none":
            public = None
        else:
            try:
                public = params.strict_bool(is_public, "is_public")
            except BadRequest:
                raise BadRequest(f"Invalid is_public filter [{is_public}]") from None
    ram = _min_filter(min_ram, "minRam")
    disk = _min_filter(min_disk, "minDisk")
    key = sort_key or "flavorid"
    if key not in _SORT_KEYS:
        raise BadRequest(f"Invalid input for query parameters sort_key. Value: {key}.")
    direction = sort_dir or "asc"
    if direction not in ("asc", "desc"):
        raise BadRequest(f"Invalid input for query parameters sort_dir. Value: {direction}.")
    page = params.page(limit, marker)
    return ListQuery(public, ram, disk, key, direction, page.limit, page.marker)


def _min_filter(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    number = params.int_text(value)
    if number is None or not 0 <= number <= params.MAX_INT:
        raise BadRequest(f"Invalid {name} filter [{value}]")
    return number


def _visible(ctx: RequestContext) -> Any:
    """Public flavors, or private ones shared with the caller's project (a token of no project
    shares none)."""
    if not ctx.project_id:
        return Flavor.is_public.is_(True)
    shared = select(FlavorAccess.flavor_id).where(FlavorAccess.project_id == ctx.project_id)
    return or_(Flavor.is_public.is_(True), Flavor.id.in_(shared))


def list_flavors(session: Session, ctx: RequestContext, query: ListQuery) -> list[Flavor]:
    stmt = select(Flavor)
    if query.is_public is True:
        stmt = stmt.where(_visible(ctx))
    elif query.is_public is False:
        stmt = stmt.where(Flavor.is_public.is_(False))
    if query.min_ram is not None:
        stmt = stmt.where(Flavor.ram >= query.min_ram)
    if query.min_disk is not None:
        stmt = stmt.where(Flavor.disk >= query.min_disk)
    column = _SORT_KEYS[query.sort_key]
    order = column.desc() if query.sort_dir == "desc" else column.asc()
    stmt = stmt.order_by(order, Flavor.id.desc() if query.sort_dir == "desc" else Flavor.id.asc())
    flavors = list(session.scalars(stmt))
    if query.marker is not None:
        ids = [f.id for f in flavors]
        if query.marker not in ids:
            raise BadRequest(f"marker [{query.marker}] not found")
        flavors = flavors[ids.index(query.marker) + 1 :]
    if query.limit is not None:
        flavors = flavors[: query.limit]
    return flavors


def get_flavor(session: Session, ctx: RequestContext, flavor_id: str) -> Flavor:
    """A flavor the caller may see: admins see all, others public and shared ones."""
    stmt = select(Flavor).where(Flavor.id == flavor_id)
    if not ctx.is_admin:
        stmt = stmt.where(_visible(ctx))
    flavor = session.scalar(stmt)
    if flavor is None:
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    return flavor


def get_flavor_for_boot(session: Session, ctx: RequestContext, flavor_ref: str) -> Flavor:
    """The flavor a server create names (an id or a link to one); unknown is a 400 there."""
    flavor_id = str(flavor_ref).rstrip("/").rsplit("/", 1)[-1]
    try:
        return get_flavor(session, ctx, flavor_id)
    except NotFound:
        raise BadRequest(f"Flavor {flavor_ref} could not be found.") from None


def snapshot(flavor: Flavor) -> dict[str, Any]:
    """The copy of a flavor a server keeps (Instance.flavor): what it was built or resized to."""
    return {
        "id": flavor.id,
        "name": flavor.name,
        "vcpus": flavor.vcpus,
        "ram": flavor.ram,
        "disk": flavor.disk,
        "ephemeral": flavor.ephemeral,
        "swap": flavor.swap,
        "extra_specs": dict(flavor.extra_specs or {}),
    }


# ---------------------------------------------------------------------------- flavor-manage


@dataclass(frozen=True)
class FlavorSpec:
    name: str
    ram: int
    vcpus: int
    disk: int
    id: str | None = None
    ephemeral: int = 0
    swap: int = 0
    rxtx_factor: float = 1.0
    is_public: bool = True
    description: str | None = None


def parse_create(body: Any, mv: Microversion) -> FlavorSpec:
    data = params.body_object(body, "flavor")
    allowed = {
        "name",
        "ram",
        "vcpus",
        "disk",
        "id",
        "OS-FLV-EXT-DATA:ephemeral",
        "swap",
        "rxtx_factor",
        "os-flavor-access:is_public",
    }
    if mv.at_least(DESCRIPTION_VERSION):
        allowed.add("description")
    params.reject_unknown(data, allowed, "flavor")
    for required in ("name", "ram", "vcpus", "disk"):
        if required not in data:
            raise BadRequest(f"Invalid input for field/attribute flavor. '{required}' is a required property")
    flavor_id = data.get("id")
    if flavor_id is not None:
        if isinstance(flavor_id, bool) or not isinstance(flavor_id, (str, int, float)):
            raise BadRequest(f"Invalid input for field/attribute id. Value: {flavor_id!r}.")
        flavor_id = str(flavor_id)
        if not 1 <= len(flavor_id) <= 255 or not _FLAVOR_ID_RE.match(flavor_id):
            raise BadRequest(
                f"Invalid input for field/attribute id. Value: {flavor_id}. Does not match pattern"
            )
    is_public = data.get("os-flavor-access:is_public", True)
    return FlavorSpec(
        name=params.name_value(data["name"]),
        ram=params.int_value(data["ram"], "ram", 1),
        vcpus=params.int_value(data["vcpus"], "vcpus", 1),
        disk=params.int_value(data["disk"], "disk", 0),
        id=flavor_id,
        ephemeral=params.int_value(data.get("OS-FLV-EXT-DATA:ephemeral", 0), "OS-FLV-EXT-DATA:ephemeral", 0),
        swap=params.int_value(data.get("swap", 0), "swap", 0),
        rxtx_factor=_rxtx(data.get("rxtx_factor", 1.0)),
        is_public=params.strict_bool(is_public, "os-flavor-access:is_public"),
        description=parse_description(data.get("description")),
    )


def _rxtx(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadRequest(f"Invalid input for field/attribute rxtx_factor. Value: {value!r}.")
    if isinstance(value, str) and not _RXTX_RE.match(value):
        raise BadRequest(f"Invalid input for field/attribute rxtx_factor. Value: {value}.")
    number = float(value)
    if number <= 0 or number > 3.40282e38:
        raise BadRequest(f"Invalid input for field/attribute rxtx_factor. Value: {value}.")
    return number


def parse_description(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field/attribute description. Value: {value!r}.")
    if len(value) > MAX_DESCRIPTION or not all(c.isprintable() or c in "\n\r\t" for c in value):
        raise BadRequest("Invalid input for field/attribute description.")
    return value


def parse_update(body: Any) -> str | None:
    data = params.body_object(body, "flavor")
    params.reject_unknown(data, {"description"}, "flavor")
    if "description" not in data:
        raise BadRequest("Invalid input for field/attribute flavor. 'description' is a required property")
    return parse_description(data["description"])


def create_flavor(session: Session, ctx: RequestContext, spec: FlavorSpec) -> Flavor:
    ctx.require_admin()
    flavor_id = spec.id or str(uuid.uuid4())
    if session.scalar(select(Flavor.id).where(Flavor.name == spec.name)) is not None:
        raise Conflict(f"Flavor with name {spec.name} already exists.")
    if session.get(Flavor, flavor_id) is not None:
        raise Conflict(f"Flavor with ID {flavor_id} already exists.")
    flavor = Flavor(
        id=flavor_id,
        name=spec.name,
        vcpus=spec.vcpus,
        ram=spec.ram,
        disk=spec.disk,
        ephemeral=spec.ephemeral,
        swap=spec.swap,
        rxtx_factor=spec.rxtx_factor,
        is_public=spec.is_public,
        description=spec.description,
        extra_specs={},
    )
    session.add(flavor)
    session.flush()
    return flavor


def update_description(
    session: Session, ctx: RequestContext, flavor_id: str, description: str | None
) -> Flavor:
    ctx.require_admin()
    flavor = get_flavor(session, ctx, flavor_id)
    flavor.description = description
    session.flush()
    return flavor


def delete_flavor(session: Session, ctx: RequestContext, flavor_id: str) -> None:
    ctx.require_admin()
    flavor = get_flavor(session, ctx, flavor_id)
    session.query(FlavorAccess).filter(FlavorAccess.flavor_id == flavor.id).delete()
    session.delete(flavor)
    session.flush()


# ---------------------------------------------------------------------------- os-extra_specs


def parse_extra_specs(body: Any, mv: Microversion) -> dict[str, str]:
    """kumo's rules at every version; from 2.86 also Nova's table of known specs."""
    specs = extra_specs_rules.validate_specs(params.body_object(body, "extra_specs"))
    if mv.at_least(known_extra_specs.VERSION):
        for key, value in specs.items():
            known_extra_specs.check(key, value)
    return specs


def parse_extra_spec_item(body: Any, key: str, mv: Microversion) -> str:
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Request body contains too many items")
    if key not in body:
        raise BadRequest("Request body and URI mismatch")
    value = extra_specs_rules.validate_spec(key, body[key])
    if mv.at_least(known_extra_specs.VERSION):
        known_extra_specs.check(key, value)
    return value


def extra_specs(session: Session, ctx: RequestContext, flavor_id: str) -> dict[str, str]:
    return dict(get_flavor(session, ctx, flavor_id).extra_specs or {})


def extra_spec(session: Session, ctx: RequestContext, flavor_id: str, key: str) -> str:
    specs = extra_specs(session, ctx, flavor_id)
    if key not in specs:
        raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
    return specs[key]


def set_extra_specs(
    session: Session, ctx: RequestContext, flavor_id: str, specs: dict[str, str]
) -> dict[str, str]:
    ctx.require_admin()
    flavor = get_flavor(session, ctx, flavor_id)
    flavor.extra_specs = {**(flavor.extra_specs or {}), **specs}
    session.flush()
    return specs


def delete_extra_spec(session: Session, ctx: RequestContext, flavor_id: str, key: str) -> None:
    ctx.require_admin()
    flavor = get_flavor(session, ctx, flavor_id)
    specs = dict(flavor.extra_specs or {})
    if key not in specs:
        raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
    del specs[key]
    flavor.extra_specs = specs
    session.flush()


# ---------------------------------------------------------------------------- os-flavor-access


def access_list(session: Session, ctx: RequestContext, flavor_id: str) -> list[FlavorAccess]:
    ctx.require_admin()
    flavor = get_flavor(session, ctx, flavor_id)
    if flavor.is_public:
        raise NotFound("Access list not available for public flavors.")
    return _access_rows(session, flavor.id)


def _access_rows(session: Session, flavor_id: str) -> list[FlavorAccess]:
    stmt = select(FlavorAccess).where(FlavorAccess.flavor_id == flavor_id).order_by(FlavorAccess.project_id)
    return list(session.scalars(stmt))


def parse_access_action(body: Any) -> tuple[str, str]:
    """(action, project id) from `{"addTenantAccess": {"tenant": ...}}` or its remove twin."""
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid flavor action: exactly one action is expected.")
    action, args = next(iter(body.items()))
    if action not in ("addTenantAccess", "removeTenantAccess"):
        raise BadRequest(f"There is no such action: {action}")
    if not isinstance(args, dict) or set(args) != {"tenant"}:
        raise BadRequest(f"Invalid input for field/attribute {action}. 'tenant' is a required property")
    tenant = args["tenant"]
    if not isinstance(tenant, str) or not 1 <= len(tenant) <= 255:
        raise BadRequest(f"Invalid input for field/attribute tenant. Value: {tenant!r}.")
    return action, tenant


def add_access(session: Session, ctx: RequestContext, flavor_id: str, project_id: str) -> list[FlavorAccess]:
    ctx.require_admin()
    flavor = get_flavor(session, ctx, flavor_id)
    if flavor.is_public:
        raise Conflict("Can not add access to a public flavor.")
    if session.get(Project, project_id) is None:
        raise BadRequest(f"Project ID {project_id} is not a valid project.")
    if session.get(FlavorAccess, (flavor.id, project_id)) is not None:
        raise Conflict(
            f"Flavor access already exists for flavor {flavor.id} and project {project_id} combination."
        )
    session.add(FlavorAccess(flavor_id=flavor.id, project_id=project_id))
    session.flush()
    return _access_rows(session, flavor.id)


def remove_access(
    session: Session, ctx: RequestContext, flavor_id: str, project_id: str
) -> list[FlavorAccess]:
    ctx.require_admin()
    flavor = get_flavor(session, ctx, flavor_id)
    row = session.get(FlavorAccess, (flavor.id, project_id))
    if row is None:
        raise NotFound(f"Flavor access not found for {flavor.id} / {project_id} combination.")
    session.delete(row)
    session.flush()
    return _access_rows(session, flavor.id)
