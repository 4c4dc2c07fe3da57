"""Image domain (Glance v2 semantics): who sees what, validation of attributes, JSON-patch
updates, and the queued → saving → active life of an upload.

Functions taking a Session run inside the caller's transaction. The data path (upload, download,
delete) takes the Database and a store instead, because it spans several short transactions
around work that must not hold one open: streaming gigabytes into a file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, false, func, or_, select, true, update
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.db import Database, utcnow
from kumo.db.base import after_commit
from kumo.errors import BadRequest, Conflict, Forbidden, NotFound, RequestEntityTooLarge, UnsupportedMediaType
from kumo.image.models import Image, ImageMember
from kumo.image.store import ImageStore
from kumo.validation import MAX_INT, int_text

log = logging.getLogger("kumo.image")

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")
STATUSES = (
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "pending_delete",
    "deactivated",
    "uploading",
    "importing",
)
HASH_ALGO = "sha512"

# Attributes the server owns: writing them is refused with 403, as Glance does.
READ_ONLY = frozenset(
    {
        "status",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
        "created_at",
        "updated_at",
        "self",
        "file",
        "schema",
        "direct_url",
        "locations",
        "stores",
    }
)
RESERVED = frozenset({"location", "deleted", "deleted_at"})
# Core attributes a client may set; everything else is an extra (string) property.
WRITABLE = frozenset(
    {
        "name",
        "visibility",
        "protected",
        "os_hidden",
        "min_disk",
        "min_ram",
        "container_format",
        "disk_format",
        "tags",
        "owner",
    }
)
MAX_STRING = 255
MAX_OWNER = 64  # a project id: the width of Image.owner (a longer one was a 500 on PostgreSQL)
MAX_PROPERTY_VALUE = 65535
MAX_PROPERTIES = 128
MAX_TAGS = 128
MAX_BIGINT = 2**63 - 1  # image size columns
DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
PATCH_MEDIA_TYPES = {
    "application/openstack-images-v2.1-json-patch": "2.1",
    "application/openstack-images-v2.0-json-patch": "2.0",
}


def _not_found(image_id: str) -> NotFound:
    return NotFound(f"No image found with ID {image_id}")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


# --- visibility -------------------------------------------------------------------------------


MEMBER_STATUSES = ("pending", "accepted", "rejected")


def can_see(session: Session, ctx: RequestContext, image: Image) -> bool:
    """Glance's rule: admin, public and community images, the owner, and a project the image is
    shared with (visibility `shared`, a member of any status: pending members may look before
    they accept)."""
    if ctx.is_admin or image.visibility in ("public", "community"):
        return True
    if ctx.project_id is None:
        return False
    if image.owner == ctx.project_id:
        return True
    return image.visibility == "shared" and session.get(ImageMember, (image.id, ctx.project_id)) is not None


def _find(session: Session, ctx: RequestContext, image_id: str, *, lock: bool = False) -> Image:
    """The image if the caller may see it; otherwise 404 (never reveal that it exists)."""
    if not _is_uuid(image_id):
        raise _not_found(image_id)
    stmt = select(Image).where(Image.id == image_id)
    if lock:
        stmt = stmt.with_for_update()
    image = session.scalar(stmt)
    if image is None or not can_see(session, ctx, image):
        raise _not_found(image_id)
    return image


def find_image(session: Session, ctx: RequestContext, image_id: str, *, lock: bool = False) -> Image:
    """The image if the caller may see it (404 otherwise), for the image's sub-resources."""
    return _find(session, ctx, image_id, lock=lock)


def _find_own(session: Session, ctx: RequestContext, image_id: str) -> Image:
    """The image if the caller may change it: 404 when invisible, 403 when merely visible."""
    ctx.require_writer()
    image = _find(session, ctx, image_id, lock=True)
    if not ctx.owns(image.owner):
        raise Forbidden(f"You are not permitted to modify image {image_id}.")
    return image


def get_image(session: Session, ctx: RequestContext, image_id: str) -> Image:
    return _find(session, ctx, image_id)


def get_image_for_boot(session: Session, ctx: RequestContext, image_id: str) -> Image:
    """The image a server is booted from: NotFound unless visible, BadRequest unless active."""
    image = _find(session, ctx, image_id)
    if image.status != "active":
        raise BadRequest(f"Image {image_id} is not active.")
    return image


# --- attribute validation ---------------------------------------------------------------------


def _string(key: str, value: Any, nullable: bool = True, max_len: int = MAX_STRING) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Invalid value for '{key}': expected a string.")
    if len(value) > max_len:
        raise BadRequest(f"Invalid value for '{key}': longer than {max_len} characters.")
    return value


def _choice(key: str, value: Any, choices: Sequence[str]) -> str | None:
    if value is None:
        return None
    if value not in choices:
        raise BadRequest(f"Invalid value '{value}' for '{key}': must be one of {', '.join(choices)}.")
    return str(value)


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"Invalid value for '{key}': expected a boolean.")
    return value


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise BadRequest(f"Invalid value for '{key}': expected an integer between 0 and {MAX_INT}.")
    return value


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise BadRequest("Invalid value for 'tags': expected a list of strings.")
    tags: list[str] = []
    for tag in value:
        checked = _string("tags", tag, nullable=False)
        assert checked is not None
        if checked not in tags:
            tags.append(checked)
    if len(tags) > MAX_TAGS:
        raise RequestEntityTooLarge(f"Maximum number of tags exceeded: {len(tags)} > {MAX_TAGS}.")
    return tags


def _check_key(key: str) -> None:
    if key in READ_ONLY:
        raise Forbidden(f"Attribute '{key}' is read-only.")
    if key in RESERVED:
        raise Forbidden(f"Attribute '{key}' is reserved.")


def _set(ctx: RequestContext, image: Image, key: str, value: Any) -> None:
    """Validate and assign one attribute, core or extra."""
    _check_key(key)
    if key == "id":
        raise Forbidden("Attribute 'id' is read-only.")
    if key == "name":
        image.name = _string(key, value)
    elif key == "visibility":
        visibility = _choice(key, value, VISIBILITIES)
        if visibility is None:
            raise BadRequest(f"Invalid value for 'visibility': must be one of {', '.join(VISIBILITIES)}.")
        if visibility == "public" and image.visibility != "public" and not ctx.is_admin:
            raise Forbidden("You are not authorized to publicize images: only an admin may.")
        image.visibility = visibility
    elif key in ("protected", "os_hidden"):
        setattr(image, key, _boolean(key, value))
    elif key in ("min_disk", "min_ram"):
        setattr(image, key, _count(key, value))
    elif key in ("container_format", "disk_format"):
        formats = CONTAINER_FORMATS if key == "container_format" else DISK_FORMATS
        fmt = _choice(key, value, formats)
        if fmt != getattr(image, key) and image.status != "queued":
            raise Forbidden(f"Attribute {key} can be only replaced for a queued image.")
        setattr(image, key, fmt)
    elif key == "tags":
        image.tags = _tags(value)
    elif key == "owner":
        owner = _string(key, value, max_len=MAX_OWNER)
        if owner != image.owner and not ctx.is_admin and owner != ctx.project_id:
            raise Forbidden("Only an admin may give an image to another project.")
        image.owner = owner
    else:
        _set_property(image, key, value)


def _set_property(image: Image, key: str, value: Any) -> None:
    if not key or len(key) > MAX_STRING:
        raise BadRequest(f"Invalid property name '{key[:MAX_STRING]}'.")
    checked = _string(key, value, nullable=False, max_len=MAX_PROPERTY_VALUE)
    properties = dict(image.properties or {})  # a new dict, so SQLAlchemy sees the change
    properties[key] = checked
    if len(properties) > MAX_PROPERTIES:
        raise RequestEntityTooLarge(f"Maximum number of image properties exceeded: {MAX_PROPERTIES}.")
    image.properties = properties


def _remove(image: Image, key: str) -> None:
    _check_key(key)
    if key in WRITABLE or key == "id":
        raise Forbidden(f"Property {key} may not be removed.")
    properties = dict(image.properties or {})
    if key not in properties:
        raise Conflict(f"Property {key} does not exist.")
    del properties[key]
    image.properties = properties


# --- create -----------------------------------------------------------------------------------


def create_image(session: Session, ctx: RequestContext, body: dict[str, Any]) -> Image:
    ctx.require_writer()
    if not ctx.is_admin and ctx.project_id is None:
        raise Forbidden("Creating an image needs a project-scoped token.")
    image_id = body.get("id")
    if image_id is None:
        image_id = str(uuid.uuid4())
    elif not isinstance(image_id, str) or not _is_uuid(image_id):
        raise BadRequest(f"Invalid value for 'id': '{image_id}' is not a valid UUID.")
    else:
        image_id = str(uuid.UUID(image_id))
        if session.get(Image, image_id) is not None:
            raise Conflict(f"An image with identifier {image_id} already exists.")
    now = utcnow()
    image = Image(
        id=image_id,
        name=None,
        status="queued",
        visibility="shared",
        owner=ctx.project_id,
        container_format=None,
        disk_format=None,
        size=None,
        virtual_size=None,
        checksum=None,
        os_hash_algo=None,
        os_hash_value=None,
        min_disk=0,
        min_ram=0,
        protected=False,
        os_hidden=False,
        properties={},
        tags=[],
        created_at=now,
        updated_at=now,
    )
    for key, value in body.items():
        if key != "id":
            _set(ctx, image, key, value)
    session.add(image)
    return image


# --- update (JSON patch) ----------------------------------------------------------------------


@dataclass(frozen=True)
class PatchOp:
    op: str  # add | replace | remove
    key: str  # the image attribute (a one-segment JSON pointer, unescaped)
    value: Any = None
    strict_add: bool = False  # v2.0 media type: "add" of something present is a conflict


def _pointer(path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/") or len(path) < 2:
        raise BadRequest(f"Invalid JSON pointer for this resource: '{path}'.")
    segment = path[1:]
    if "/" in segment:
        raise BadRequest(f"Invalid JSON pointer for this resource: '{path}'.")
    if "~" in segment.replace("~0", "").replace("~1", ""):
        raise BadRequest(f"Invalid JSON pointer for this resource: '{path}'.")
    return segment.replace("~1", "/").replace("~0", "~")


def parse_patch(content_type: str, raw: bytes) -> list[PatchOp]:
    """Parse a Glance JSON-patch body (v2.1 `{"op", "path"}` or v2.0 `{"<op>": path}` form)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    version = PATCH_MEDIA_TYPES.get(media_type)
    if version is None:
        raise UnsupportedMediaType(
            f"Unsupported Content-Type '{media_type}' for PATCH: use one of " + ", ".join(PATCH_MEDIA_TYPES)
        )
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        raise BadRequest("Malformed JSON in request body.") from None
    if not isinstance(doc, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    ops: list[PatchOp] = []
    for item in doc:
        if not isinstance(item, dict):
            raise BadRequest("Operations must be JSON objects.")
        if version == "2.1":
            op, path = item.get("op"), item.get("path")
        else:
            named = [name for name in ("add", "replace", "remove") if name in item]
            if len(named) != 1:
                raise BadRequest("Operation objects must contain exactly one operation member.")
            op, path = named[0], item[named[0]]
        if op not in ("add", "replace", "remove"):
            raise BadRequest(f"Invalid operation: '{op}'.")
        if op != "remove" and "value" not in item:
            raise BadRequest(f"Operation '{op}' requires a 'value' member.")
        ops.append(PatchOp(op, _pointer(path), item.get("value"), strict_add=version == "2.0"))
    return ops


def update_image(session: Session, ctx: RequestContext, image_id: str, ops: Sequence[PatchOp]) -> Image:
    image = _find_own(session, ctx, image_id)
    for op in ops:
        present = op.key in WRITABLE or op.key in (image.properties or {})
        if op.op == "remove":
            _remove(image, op.key)
        elif op.op == "replace" and not present and op.key not in READ_ONLY | RESERVED | {"id"}:
            raise Conflict(f"Property {op.key} does not exist.")
        elif op.op == "add" and op.strict_add and op.key in (image.properties or {}):
            raise Conflict(f"Property {op.key} already present.")
        else:
            _set(ctx, image, op.key, op.value)
    image.updated_at = utcnow()
    return image


def add_tag(session: Session, ctx: RequestContext, image_id: str, tag: str) -> None:
    image = _find_own(session, ctx, image_id)
    image.tags = _tags([*(image.tags or []), tag])
    image.updated_at = utcnow()


def delete_tag(session: Session, ctx: RequestContext, image_id: str, tag: str) -> None:
    image = _find_own(session, ctx, image_id)
    if tag not in (image.tags or []):
        raise NotFound(f"Tag {tag} not found on image {image_id}.")
    image.tags = [t for t in image.tags if t != tag]
    image.updated_at = utcnow()


def set_active(session: Session, ctx: RequestContext, image_id: str, active: bool) -> None:
    """Deactivate (active → deactivated) or reactivate (deactivated → active)."""
    image = _find_own(session, ctx, image_id)
    target, source = ("active", "deactivated") if active else ("deactivated", "active")
    if image.status == target:
        return
    if image.status != source:
        verb = "reactivate" if active else "deactivate"
        raise Forbidden(f"Not allowed to {verb} image in status '{image.status}'.")
    image.status = target
    image.updated_at = utcnow()


# --- list -------------------------------------------------------------------------------------

SORT_KEYS = (
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
    "min_disk",
    "min_ram",
    "owner",
    "visibility",
)
_NULLABLE_SORT = {"name": "", "container_format": "", "disk_format": "", "owner": "", "size": -1}
_IN_FILTERS = (
    "id",
    "name",
    "status",
    "disk_format",
    "container_format",
    "owner",
    "checksum",
    "os_hash_value",
)
# Integer attributes filtered by equality, as Glance filters any column of its image table.
_NUMBER_FILTERS = ("size", "virtual_size", "min_ram", "min_disk")
_TIME_OPS = ("gt", "gte", "lt", "lte", "eq", "neq")
_PAGING = ("limit", "marker", "sort", "sort_key", "sort_dir")


@dataclass
class ListQuery:
    limit: int = DEFAULT_LIMIT
    marker: str | None = None
    sort: list[tuple[str, str]] = field(default_factory=lambda: [("created_at", "desc")])
    visibility: str | None = None
    equal: dict[str, list[str]] = field(default_factory=dict)  # column → accepted values
    size_min: int | None = None
    size_max: int | None = None
    numbers: dict[str, int] = field(default_factory=dict)  # column → the value it equals
    member_status: str = "accepted"  # of the images shared with the caller that are listed
    flags: dict[str, bool] = field(default_factory=dict)  # protected, os_hidden
    times: list[tuple[str, str, dt.datetime]] = field(default_factory=list)  # column, op, value
    tags: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)


@dataclass
class Page:
    images: list[Image]
    next_marker: str | None


def _int_param(name: str, raw: str, minimum: int = 0, maximum: int | None = MAX_BIGINT) -> int:
    """A query integer within [minimum, maximum] (None: unbounded, for values only compared in
    Python); the default bound is the BIGINT size columns' range."""
    value = int_text(raw)
    if value is None:
        raise BadRequest(f"Invalid value for '{name}': '{raw}' is not an integer.")
    if value < minimum:
        raise BadRequest(f"Invalid value for '{name}': must be at least {minimum}.")
    if maximum is not None and value > maximum:
        raise BadRequest(f"Invalid value for '{name}': must be at most {maximum}.")
    return value


def _bool_param(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise BadRequest(f"Invalid value for '{name}': '{raw}' is not a boolean.")


def _in_values(raw: str) -> list[str]:
    if not raw.startswith("in:"):
        return [raw]
    return [v.strip().strip('"') for v in raw[3:].split(",") if v.strip()]


def _time_param(name: str, raw: str) -> tuple[str, dt.datetime]:
    op, sep, value = raw.partition(":")
    if not sep or op not in _TIME_OPS:
        op, value = "eq", raw
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is not None:  # OverflowError: a time that leaves years 1-9999 in UTC
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise BadRequest(f"Invalid value for '{name}': '{value}' is not an ISO 8601 time.") from None
    return op, moment


def _sort_param(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    sort = [v for k, v in params if k == "sort"]
    keys = [part for k, v in params if k == "sort_key" for part in v.split(",") if part]
    dirs = [part for k, v in params if k == "sort_dir" for part in v.split(",") if part]
    if sort and (keys or dirs):
        raise BadRequest("The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir'.")
    pairs: list[tuple[str, str]] = []
    if sort:
        for item in ",".join(sort).split(","):
            key, _, direction = item.strip().partition(":")
            pairs.append((key, direction or "desc"))
    elif keys:
        if len(dirs) not in (0, 1, len(keys)):
            raise BadRequest("Give one sort_dir, or one per sort_key.")
        pairs = [(k, dirs[0] if len(dirs) == 1 else dirs[i] if dirs else "desc") for i, k in enumerate(keys)]
    elif dirs:
        pairs = [("created_at", dirs[0])]
    else:
        pairs = [("created_at", "desc")]
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid sort key: '{key}'. Use one of {', '.join(SORT_KEYS)}.")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: '{direction}'.")
    return pairs


def parse_list_query(params: list[tuple[str, str]]) -> ListQuery:
    """Turn `GET /v2/images` query parameters into a ListQuery (unknown keys filter on properties)."""
    query = ListQuery(sort=_sort_param(params))
    for key, raw in params:
        if key == "limit":
            query.limit = min(_int_param(key, raw, maximum=None), MAX_LIMIT)
        elif key == "marker":
            query.marker = raw
        elif key == "member_status":
            if raw not in (*MEMBER_STATUSES, "all"):
                raise BadRequest(f"Invalid member_status value: {raw}")
            query.member_status = raw
        elif key in _PAGING:
            continue
        elif key == "visibility":
            if raw not in (*VISIBILITIES, "all"):
                raise BadRequest(f"Invalid visibility value: {raw}")
            query.visibility = raw
        elif key in _IN_FILTERS:
            values = _in_values(raw)
            if key == "status" and any(v not in STATUSES for v in values):
                raise BadRequest(f"Invalid status value: {raw}")
            query.equal[key] = values
        elif key in ("size_min", "size_max"):
            setattr(query, key, _int_param(key, raw))
        elif key in _NUMBER_FILTERS:  # min_ram and min_disk are 32-bit columns
            bound = MAX_INT if key in ("min_ram", "min_disk") else MAX_BIGINT
            query.numbers[key] = _int_param(key, raw, maximum=bound)
        elif key in ("protected", "os_hidden"):
            query.flags[key] = _bool_param(key, raw)
        elif key in ("created_at", "updated_at"):
            op, moment = _time_param(key, raw)
            query.times.append((key, op, moment))
        elif key == "tag":
            query.tags.append(raw)
        else:
            query.properties[key] = raw
    return query


def _shared_with(ctx: RequestContext, member_status: str) -> ColumnElement[bool]:
    """Shared images of which the caller's project is a member of `member_status` ("all": any)."""
    if ctx.project_id is None:
        return false()
    members = select(ImageMember.image_id).where(ImageMember.member_id == ctx.project_id)
    if member_status != "all":
        members = members.where(ImageMember.status == member_status)
    return and_(Image.visibility == "shared", Image.id.in_(members))


def _visibility_clause(
    ctx: RequestContext, visibility: str | None, member_status: str
) -> ColumnElement[bool]:
    own = Image.owner == ctx.project_id if ctx.project_id is not None else false()
    if visibility in ("public", "community"):
        return Image.visibility == visibility
    if visibility == "private":
        return and_(Image.visibility == visibility, true() if ctx.is_admin else own)
    if ctx.is_admin:
        return true() if visibility != "shared" else Image.visibility == "shared"
    shared = _shared_with(ctx, member_status)
    if visibility == "shared":
        return or_(and_(Image.visibility == "shared", own), shared)
    if visibility == "all":
        return or_(Image.visibility.in_(("public", "community")), own, shared)
    return or_(Image.visibility == "public", own, shared)  # default: others' community images are not listed


def _sort_expr(key: str) -> Any:
    column = getattr(Image, key)
    return func.coalesce(column, _NULLABLE_SORT[key]) if key in _NULLABLE_SORT else column


def _sort_value(image: Image, key: str) -> Any:
    value = getattr(image, key)
    return _NULLABLE_SORT[key] if value is None and key in _NULLABLE_SORT else value


def _after(marker: Image, sort: list[tuple[str, str]]) -> ColumnElement[bool]:
    """Keyset condition: rows strictly after the marker in the (key, direction) order."""
    clauses = []
    for i, (key, direction) in enumerate(sort):
        expr, value = _sort_expr(key), _sort_value(marker, key)
        beyond = expr > value if direction == "asc" else expr < value
        ties = [_sort_expr(k) == _sort_value(marker, k) for k, _ in sort[:i]]
        clauses.append(and_(*ties, beyond))
    return or_(*clauses)


def _time_clause(column: str, op: str, moment: dt.datetime) -> ColumnElement[bool]:
    col = getattr(Image, column)
    comparisons: dict[str, Callable[[], ColumnElement[bool]]] = {
        "gt": lambda: col > moment,
        "gte": lambda: col >= moment,
        "lt": lambda: col < moment,
        "lte": lambda: col <= moment,
        "eq": lambda: col == moment,
        "neq": lambda: col != moment,
    }
    return comparisons[op]()


def list_images(session: Session, ctx: RequestContext, query: ListQuery) -> Page:
    sort = list(query.sort)
    if all(key != "id" for key, _ in sort):
        sort.append(("id", sort[-1][1]))
    stmt = select(Image).where(_visibility_clause(ctx, query.visibility, query.member_status))
    for column, values in query.equal.items():
        stmt = stmt.where(getattr(Image, column).in_(values))
    if query.size_min is not None:
        stmt = stmt.where(Image.size >= query.size_min)
    if query.size_max is not None:
        stmt = stmt.where(Image.size <= query.size_max)
    for column, number in query.numbers.items():
        stmt = stmt.where(getattr(Image, column) == number)
    for flag, setting in query.flags.items():
        stmt = stmt.where(getattr(Image, flag) == setting)
    if "os_hidden" not in query.flags:
        stmt = stmt.where(Image.os_hidden == false())
    for column, op, moment in query.times:
        stmt = stmt.where(_time_clause(column, op, moment))
    if query.marker is not None:
        try:
            marker = _find(session, ctx, query.marker)
        except NotFound:
            raise BadRequest(f"Invalid marker: image {query.marker} could not be found.") from None
        stmt = stmt.where(_after(marker, sort))
    stmt = stmt.order_by(*[_sort_expr(k).asc() if d == "asc" else _sort_expr(k).desc() for k, d in sort])
    if query.limit == 0:
        return Page([], None)

    # Tags and extra properties live in JSON columns, filtered here rather than in
    # backend-specific SQL; without such filters the database does the limiting.
    def wanted(image: Image) -> bool:
        props = image.properties or {}
        return all(t in (image.tags or []) for t in query.tags) and all(
            props.get(k) == v for k, v in query.properties.items()
        )

    if query.tags or query.properties:
        rows: list[Image] = []
        for image in session.scalars(stmt):
            if wanted(image):
                rows.append(image)
                if len(rows) > query.limit:
                    break
    else:
        rows = list(session.scalars(stmt.limit(query.limit + 1)))
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return Page(rows, rows[-1].id if more else None)


# --- data: upload, download, delete -----------------------------------------------------------


@dataclass(frozen=True)
class ImageData:
    size: int
    checksum: str | None
    chunks: Iterator[bytes] | None  # None: the image has no data yet


def upload_data(
    db: Database, store: ImageStore, ctx: RequestContext, image_id: str, chunks: Iterable[bytes]
) -> None:
    """Stream data into an image: queued → saving → active; back to queued if anything fails."""
    with db.transaction() as session:
        image = _find_own(session, ctx, image_id)
        if image.status != "queued":
            raise Conflict(f"Image status transition from {image.status} to saving is not allowed.")
        if image.disk_format is None or image.container_format is None:
            raise BadRequest("Properties disk_format, container_format must be set prior to saving data.")
        # Compare-and-set: of two concurrent uploads only one moves the image to saving.
        claimed = session.execute(
            update(Image)
            .where(Image.id == image_id, Image.status == "queued")
            .values(status="saving", updated_at=utcnow())
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"Image {image_id} is already being uploaded.")
    try:
        stored = store.put(image_id, chunks)
    except BaseException:
        with db.transaction() as session:
            session.execute(
                update(Image)
                .where(Image.id == image_id, Image.status == "saving")
                .values(status="queued", updated_at=utcnow())
            )
        raise
    with db.transaction() as session:
        done = session.execute(
            update(Image)
            .where(Image.id == image_id, Image.status == "saving")
            .values(
                status="active",
                size=stored.size,
                checksum=stored.md5,
                os_hash_algo=HASH_ALGO,
                os_hash_value=stored.sha512,
                updated_at=utcnow(),
            )
        )
        finished = done.rowcount == 1  # type: ignore[attr-defined]
    if not finished:
        store.delete(image_id)
        raise Conflict(f"Image {image_id} was deleted while its data was being uploaded.")


def open_data(db: Database, store: ImageStore, ctx: RequestContext, image_id: str) -> ImageData:
    with db.transaction() as session:
        image = _find(session, ctx, image_id)
        status, size, checksum = image.status, image.size, image.checksum
    if status == "deactivated" and not ctx.is_admin:
        raise Forbidden("The requested image has been deactivated. Image data download is forbidden.")
    if status not in ("active", "deactivated") or not size:
        return ImageData(0, checksum, None)
    return ImageData(size, checksum, store.open(image_id))


def delete_image(db: Database, store: ImageStore, ctx: RequestContext, image_id: str) -> None:
    with db.transaction() as session:
        image = _find_own(session, ctx, image_id)
        if image.protected:
            raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
        session.execute(delete(ImageMember).where(ImageMember.image_id == image_id))
        session.delete(image)
    # After the commit: a failed commit must not lose the data of a surviving image.
    store.delete(image_id)


# --- snapshots of servers (kumo.compute.snapshots) ---------------------------------------------

# Snapshots are uploaded by the host's agent as qcow2 (the fake driver's bytes are no disk).
SNAPSHOT_DISK_FORMAT = "qcow2"


def create_snapshot(
    session: Session,
    *,
    name: str,
    owner: str,
    base: Image | None,
    properties: dict[str, Any],
    min_disk: int,
) -> Image:
    """A queued private image for a server's snapshot, owned by the server's project: its
    properties the base image's (when it still exists) overlaid with `properties`, min_disk at
    least `min_disk` (the flavor's root disk), min_ram the base image's (Nova's rules)."""
    now = utcnow()
    inherited = dict(base.properties or {}) if base is not None else {}
    image = Image(
        id=str(uuid.uuid4()),
        name=name,
        status="queued",
        visibility="private",
        owner=owner,
        container_format="bare",
        disk_format=SNAPSHOT_DISK_FORMAT,
        size=None,
        virtual_size=None,
        checksum=None,
        os_hash_algo=None,
        os_hash_value=None,
        min_disk=max(min_disk, base.min_disk if base is not None else 0),
        min_ram=base.min_ram if base is not None else 0,
        protected=False,
        os_hidden=False,
        properties={**inherited, **properties},
        tags=[],
        created_at=now,
        updated_at=now,
    )
    session.add(image)
    return image


def image_status(session: Session, image_id: str) -> str | None:
    """The image's status, None when it is gone (no visibility rule: for agents)."""
    image = session.get(Image, image_id)
    return None if image is None else image.status


def discard(session: Session, image_id: str, *, unless_active: bool = False) -> None:
    """Delete an image a server's change no longer wants (a failed snapshot, an unshelved
    server's shelve snapshot) unless it is protected (or, `unless_active`, already active: an
    upload that finished); its data goes once the transaction commits (the session's
    database's `image_store`). Gone already: nothing."""
    image = session.get(Image, image_id)
    if image is None or image.protected or (unless_active and image.status == "active"):
        return
    session.execute(delete(ImageMember).where(ImageMember.image_id == image_id))
    session.delete(image)
    store = getattr(session.info.get("database"), "image_store", None)
    if store is not None:  # the data once the row's deletion commits (never for a rollback)
        after_commit(session, lambda: _delete_data(store, image_id))


def rotate_backups(
    session: Session,
    instance_uuid: str,
    owner: str,
    backup_type: str,
    keep: int,
    *,
    requester: str | None,
    requester_is_admin: bool,
) -> list[str]:
    """Of a server's backups of `backup_type` (images owned by the server's project `owner`
    whose properties say image_type backup, that backup_type and the server's uuid), keep the
    newest `keep` and delete the others, oldest first (Nova's _rotate_backups); returns the ids
    deleted. As Nova lists and deletes with the requester's context, nothing is touched unless
    the requester (project `requester`, or an admin) may delete the owner's images, and an
    image the delete refuses (protected) is skipped, still counted. Another project's images,
    whatever their properties, neither count nor go."""
    if not requester_is_admin and requester != owner:
        return []
    backups = session.scalars(
        select(Image)
        .where(
            Image.owner == owner,
            Image.properties["image_type"].as_string() == "backup",
            Image.properties["backup_type"].as_string() == backup_type,
            Image.properties["instance_uuid"].as_string() == instance_uuid,
        )
        .order_by(Image.created_at.desc(), Image.id.desc())
    ).all()
    excess = [image for image in backups[max(keep, 0) :] if not image.protected]
    for image in reversed(excess):
        discard(session, image.id)
    return [image.id for image in excess]


def _delete_data(store: ImageStore, image_id: str) -> None:
    try:
        store.delete(image_id)
    except Exception:  # noqa: BLE001 — the row is gone either way; the file is only space
        log.warning("deleting the data of discarded image %s failed", image_id, exc_info=True)
