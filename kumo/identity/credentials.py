"""Keystone credentials (`/v3/credentials`): a user's secrets of some `type` (`ec2`, `totp`,
`cert`, …) kept for other services, the `blob` an opaque string.

Invariants: a blob is stored only encrypted (Fernet, the cloud's `credential_key`) and
returned decrypted; an `ec2` credential names a project and its id is the SHA-256 of the
blob's `access` (as Keystone makes it; another with the same access is a 409); the id never
changes. An admin creates, reads and changes anyone's; a system reader reads anyone's; any
other user only their own (Keystone's defaults). A credential goes with its user.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Annotated

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.identity.models import Credential, Project, User

_POLICY = "Policy doesn't allow this operation to be performed."
Id = Annotated[StrictStr, Field(min_length=1, max_length=64)]
Type = Annotated[StrictStr, Field(min_length=1, max_length=255)]


class CredentialCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    blob: StrictStr
    type: Type
    user_id: Id
    project_id: Id | None = None


class CredentialUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    blob: StrictStr | None = None
    type: Type | None = None
    user_id: Id | None = None
    project_id: Id | None = None


@dataclass(frozen=True)
class Plain:
    """A credential with its blob decrypted."""

    id: str
    user_id: str
    project_id: str | None
    type: str
    blob: str


def _plain(box: Fernet, row: Credential) -> Plain:
    try:
        blob = box.decrypt(row.encrypted_blob.encode()).decode()
    except InvalidToken:
        raise Conflict(
            f"The blob of credential {row.id} cannot be decrypted with this cloud's key."
        ) from None
    return Plain(row.id, row.user_id, row.project_id, row.type, blob)


def _may_write(ctx: RequestContext, user_id: str) -> None:
    if not ctx.is_admin and ctx.user_id != user_id:
        raise Forbidden(_POLICY)


def _may_read(ctx: RequestContext, user_id: str) -> None:
    if not ctx.can_read_everything and ctx.user_id != user_id:
        raise Forbidden(_POLICY)


def _ec2_access(blob: str) -> str:
    try:
        parsed = json.loads(blob)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read
        parsed = None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("access"), str) or not parsed["access"]:
        raise BadRequest("Invalid blob in credential: an ec2 blob is a JSON object with an access key.")
    return str(parsed["access"])


def _check(session: Session, type: str, user_id: str, project_id: str | None, blob: str) -> None:
    if session.get(User, user_id) is None:
        raise BadRequest(f"Invalid user_id: could not find user {user_id}.")
    if project_id is not None and session.get(Project, project_id) is None:
        raise BadRequest(f"Invalid project_id: could not find project {project_id}.")
    if type == "ec2":
        if project_id is None:
            raise BadRequest("Invalid project_id: an ec2 credential names a project.")
        _ec2_access(blob)


def create(session: Session, ctx: RequestContext, box: Fernet, spec: CredentialCreate) -> Plain:
    _may_write(ctx, spec.user_id)
    _check(session, spec.type, spec.user_id, spec.project_id, spec.blob)
    if spec.type == "ec2":
        cred_id = hashlib.sha256(_ec2_access(spec.blob).encode()).hexdigest()
    else:
        cred_id = uuid.uuid4().hex
    if session.get(Credential, cred_id) is not None:
        raise Conflict(f"Conflict occurred attempting to store credential - Duplicate ID, {cred_id}.")
    row = Credential(
        id=cred_id,
        user_id=spec.user_id,
        project_id=spec.project_id,
        type=spec.type,
        encrypted_blob=box.encrypt(spec.blob.encode()).decode(),
    )
    session.add(row)
    session.flush()
    return _plain(box, row)


def list_credentials(
    session: Session, ctx: RequestContext, box: Fernet, *, user_id: str | None = None, type: str | None = None
) -> list[Plain]:
    """Everyone's for admins and system readers; a user's own otherwise."""
    query = select(Credential).order_by(Credential.id)
    if not ctx.can_read_everything:
        query = query.where(Credential.user_id == ctx.user_id)
    if user_id is not None:
        query = query.where(Credential.user_id == user_id)
    if type is not None:
        query = query.where(Credential.type == type)
    return [_plain(box, row) for row in session.scalars(query)]


def _require(session: Session, ctx: RequestContext, cred_id: str) -> Credential:
    row = session.get(Credential, cred_id)
    if row is None or not (ctx.can_read_everything or row.user_id == ctx.user_id):
        raise NotFound(f"Could not find credential: {cred_id}.")
    return row


def get(session: Session, ctx: RequestContext, box: Fernet, cred_id: str) -> Plain:
    row = _require(session, ctx, cred_id)
    _may_read(ctx, row.user_id)
    return _plain(box, row)


def update(session: Session, ctx: RequestContext, box: Fernet, cred_id: str, spec: CredentialUpdate) -> Plain:
    row = _require(session, ctx, cred_id)
    _may_write(ctx, row.user_id)
    user_id = spec.user_id or row.user_id
    _may_write(ctx, user_id)
    project_id = spec.project_id if "project_id" in spec.model_fields_set else row.project_id
    blob = spec.blob if spec.blob is not None else _plain(box, row).blob
    type = spec.type or row.type
    _check(session, type, user_id, project_id, blob)
    row.user_id, row.project_id, row.type = user_id, project_id, type
    if spec.blob is not None:
        row.encrypted_blob = box.encrypt(blob.encode()).decode()
    session.flush()
    return _plain(box, row)


def delete(session: Session, ctx: RequestContext, cred_id: str) -> None:
    row = _require(session, ctx, cred_id)
    _may_write(ctx, row.user_id)
    session.delete(row)
    session.flush()
