"""Nova's image proxy (`/images`, `/images/detail`, `/images/{id}`, `/images/{id}/metadata`),
removed at 2.36 and still used below it: kumo's Glance (kumo.image.service) read and changed
with the caller's rights, so visibility, ownership and protection are Glance's rules.

Nova's list filters map onto Glance's: `name`, `status` (Nova's upper case is Glance's lower
case), `changes-since` (updated at or after), `server` (the snapshot's `instance_uuid`
property; a server link names its id), `type` (the `image_type` property), `minRam`/
`minDisk` (Glance's `min_ram`/`min_disk`), `limit` and `marker`; other parameters are
ignored, as Nova ignores them. An image's metadata is its Glance extra properties; writes of it
count against the `metadata_items` quota
(Nova's 403) and must be the owner's (Glance's 403)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import quotas
from kumo.compute.servers import validate_metadata
from kumo.db import Database
from kumo.errors import BadRequest, NotFound
from kumo.image import service
from kumo.image.models import Image
from kumo.image.store import ImageStore

_FILTERS = {
    "name": "name",
    "minRam": "min_ram",
    "minDisk": "min_disk",
    "type": "image_type",
    "limit": "limit",
    "marker": "marker",
}


def parse_list_query(params: Sequence[tuple[str, str]]) -> service.ListQuery:
    """Nova's image list parameters as a Glance list query (unknown ones dropped). Without a
    `limit` every visible image is answered, as Nova pages through Glance for the caller."""
    glance: list[tuple[str, str]] = []
    for key, value in params:
        if key == "status":
            glance.append(("status", value.lower()))
        elif key == "changes-since":
            glance.append(("updated_at", f"gte:{value}"))
        elif key == "server":  # a server id or any of its links (Nova keeps the last segment)
            glance.append(("instance_uuid", value.rstrip("/").rsplit("/", 1)[-1]))
        elif key in _FILTERS:
            glance.append((_FILTERS[key], value))
    query = service.parse_list_query(glance)
    if all(key != "limit" for key, _ in params):
        query.limit = service.MAX_LIMIT
    return query


def list_images(session: Session, ctx: RequestContext, query: service.ListQuery) -> service.Page:
    return service.list_images(session, ctx, query)


def get_image(session: Session, ctx: RequestContext, image_id: str) -> Image:
    """The image when the caller may see it; Nova's 404 "Image not found." otherwise."""
    try:
        return service.get_image(session, ctx, image_id)
    except NotFound:
        raise NotFound("Image not found.") from None


def metadata(session: Session, ctx: RequestContext, image_id: str) -> dict[str, str]:
    return dict(get_image(session, ctx, image_id).properties or {})


def metadata_item(session: Session, ctx: RequestContext, image_id: str, key: str) -> str:
    value = metadata(session, ctx, image_id).get(key)
    if value is None:
        raise NotFound("Image metadata item not found.")
    return str(value)


def parse_item(body: object, key: str) -> dict[str, str]:
    """`{"meta": {key: value}}`: exactly one item, named as the URL names it (Nova's 400s)."""
    meta = body.get("meta") if isinstance(body, dict) else None
    if not isinstance(meta, dict):
        raise BadRequest("Malformed request body: 'meta' is a required property")
    item = validate_metadata(meta)
    if len(item) > 1:
        raise BadRequest("Request body contains too many items")
    if key not in item:
        raise BadRequest("Request body and URI mismatch")
    return item


def set_metadata(
    session: Session, ctx: RequestContext, image_id: str, new: dict[str, str], replace: bool
) -> dict[str, str]:
    """Merge `new` into the image's metadata, or (`replace`) make it the metadata; answers the
    metadata after the change."""
    image = get_image(session, ctx, image_id)
    current = dict(image.properties or {})
    wanted = dict(new) if replace else {**current, **new}
    quotas.check_metadata_items(session, ctx.project_id or "", len(wanted))
    ops = [service.PatchOp("remove", key) for key in current if key not in wanted]
    ops += [service.PatchOp("add", key, value) for key, value in new.items()]
    service.update_image(session, ctx, image_id, ops)
    return dict(get_image(session, ctx, image_id).properties or {})


def delete_metadata_item(session: Session, ctx: RequestContext, image_id: str, key: str) -> None:
    metadata_item(session, ctx, image_id, key)
    service.update_image(session, ctx, image_id, [service.PatchOp("remove", key)])


def delete_image(db: Database, store: ImageStore, ctx: RequestContext, image_id: str) -> None:
    """Glance's delete (its own transaction, then the data), after Nova's 404 for an image the
    caller cannot see; someone else's image or a protected one is Glance's 403."""
    with db.read() as session:
        get_image(session, ctx, image_id)
    service.delete_image(db, store, ctx, image_id)
