"""Image members (Glance v2): the projects a `shared` image is shared with.

Invariants, as in Glance: only an image of visibility `shared` has members (any member call on
another image is a 403 naming its visibility); the owner (or an admin) adds and removes members
and sees them all; a member sees only its own membership, and it alone (or an admin) moves its
status between pending, accepted and rejected; a project that is neither sees a 404, as it
cannot see the image. A member of any status may show the image; only accepted members list it
by default (`member_status` chooses otherwise, service.list_images).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.db import utcnow
from kumo.errors import BadRequest, Conflict, Forbidden, NotFound, RequestEntityTooLarge
from kumo.image.models import Image, ImageMember
from kumo.image.service import MAX_OWNER, MEMBER_STATUSES, find_image

MAX_MEMBERS = 128  # Glance's image_member_quota


def _shared(image: Image) -> Image:
    if image.visibility != "shared":
        raise Forbidden(f"{image.visibility.capitalize()} images do not have members.")
    return image


def _member_of(session: Session, image: Image, member_id: str) -> ImageMember | None:
    return session.get(ImageMember, (image.id, member_id))


def _not_a_member(image_id: str, member_id: str) -> NotFound:
    return NotFound(f"{member_id} is not a member of image {image_id}.")


def _body_field(body: Any, key: str) -> str:
    if not isinstance(body, dict) or key not in body:
        raise BadRequest(f"The request body must be an object with a '{key}' member.")
    value = body[key]
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Invalid value for '{key}': expected a non-empty string.")
    return value


def add_member(session: Session, ctx: RequestContext, image_id: str, body: Any) -> ImageMember:
    """The owner shares its image with a project: a pending member."""
    ctx.require_writer()
    image = _shared(find_image(session, ctx, image_id, lock=True))
    if not ctx.owns(image.owner):
        raise Forbidden(f"You are not permitted to add members to image {image_id}.")
    member_id = _body_field(body, "member")
    if len(member_id) > MAX_OWNER:
        raise BadRequest(f"Invalid value for 'member': longer than {MAX_OWNER} characters.")
    if _member_of(session, image, member_id) is not None:
        raise Conflict(f"Member {member_id} already exists for image {image_id}.")
    count = session.scalar(select(func.count()).where(ImageMember.image_id == image.id)) or 0
    if count >= MAX_MEMBERS:
        raise RequestEntityTooLarge(f"Maximum number of image members exceeded: {MAX_MEMBERS}.")
    now = utcnow()
    member = ImageMember(
        image_id=image.id, member_id=member_id, status="pending", created_at=now, updated_at=now
    )
    session.add(member)
    session.flush()
    return member


def list_members(session: Session, ctx: RequestContext, image_id: str) -> list[ImageMember]:
    """The owner's (and an admin's) view: every member; a member's: its own membership."""
    image = _shared(find_image(session, ctx, image_id))
    stmt = select(ImageMember).where(ImageMember.image_id == image.id)
    if not ctx.owns(image.owner):
        stmt = stmt.where(ImageMember.member_id == ctx.project_id)
    return list(session.scalars(stmt.order_by(ImageMember.created_at, ImageMember.member_id)))


def get_member(session: Session, ctx: RequestContext, image_id: str, member_id: str) -> ImageMember:
    image = _shared(find_image(session, ctx, image_id))
    member = _member_of(session, image, member_id)
    if member is None or not (ctx.owns(image.owner) or member_id == ctx.project_id):
        raise _not_a_member(image_id, member_id)
    return member


def update_member(
    session: Session, ctx: RequestContext, image_id: str, member_id: str, body: Any
) -> ImageMember:
    """The member accepts or rejects (or returns to pending) the image shared with it."""
    image = _shared(find_image(session, ctx, image_id, lock=True))
    member = _member_of(session, image, member_id)
    if member is None or not (ctx.owns(image.owner) or member_id == ctx.project_id):
        raise _not_a_member(image_id, member_id)
    if not ctx.is_admin and member_id != ctx.project_id:
        raise Forbidden("Only the member may change the status of its membership.")
    ctx.require_writer()
    status = _body_field(body, "status")
    if status not in MEMBER_STATUSES:
        raise BadRequest(f"Invalid status '{status}': must be one of {', '.join(MEMBER_STATUSES)}.")
    member.status = status
    member.updated_at = utcnow()
    return member


def remove_member(session: Session, ctx: RequestContext, image_id: str, member_id: str) -> None:
    """The owner stops sharing its image with a project."""
    image = _shared(find_image(session, ctx, image_id, lock=True))
    member = _member_of(session, image, member_id)
    if member is None or not (ctx.owns(image.owner) or member_id == ctx.project_id):
        raise _not_a_member(image_id, member_id)
    if not ctx.owns(image.owner):
        raise Forbidden(f"You are not permitted to remove members of image {image_id}.")
    ctx.require_writer()
    session.delete(member)
