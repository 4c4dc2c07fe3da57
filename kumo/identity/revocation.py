"""What makes a signed token invalid before it expires, kept in the database, and the loading
of its in-memory view (kumo.tokens.Revocations) that token verification reads (refreshed every
few seconds, so verifying reads no database)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from kumo.db import utcnow
from kumo.identity.models import RevocationEvent, RevokedToken
from kumo.tokens import Revocations


def load(session: Session, token_ttl_seconds: int) -> Revocations:
    now = utcnow()
    audit_ids = frozenset(session.scalars(select(RevokedToken.audit_id).where(RevokedToken.expires_at > now)))
    users: dict[str, dt.datetime] = {}
    projects: dict[str, dt.datetime] = {}
    pairs: dict[tuple[str, str], dt.datetime] = {}
    creds: dict[str, dt.datetime] = {}
    horizon = now - dt.timedelta(seconds=token_ttl_seconds)
    for ev in session.scalars(select(RevocationEvent).where(RevocationEvent.issued_before > horizon)):
        if ev.app_cred_id:
            creds[ev.app_cred_id] = max(ev.issued_before, creds.get(ev.app_cred_id, ev.issued_before))
        elif ev.user_id and ev.project_id:
            pairs[(ev.user_id, ev.project_id)] = max(
                ev.issued_before, pairs.get((ev.user_id, ev.project_id), ev.issued_before)
            )
        elif ev.user_id:
            users[ev.user_id] = max(ev.issued_before, users.get(ev.user_id, ev.issued_before))
        elif ev.project_id:
            projects[ev.project_id] = max(ev.issued_before, projects.get(ev.project_id, ev.issued_before))
    return Revocations(audit_ids, users, projects, pairs, creds)


def revoked_now(
    session: Session,
    audit_id: str,
    user_id: str,
    project_id: str | None,
    issued_at: dt.datetime,
    app_cred_id: str | None = None,
) -> bool:
    """What `Revocations.revokes` answers, read from the database itself rather than from a
    worker's cache (which may be up to its refresh interval old): for a token about to be
    exchanged for another."""
    if session.get(RevokedToken, audit_id) is not None:
        return True
    events = [
        and_(
            RevocationEvent.user_id == user_id,
            RevocationEvent.project_id.is_(None),
            RevocationEvent.app_cred_id.is_(None),
        )
    ]
    if app_cred_id is not None:
        events.append(RevocationEvent.app_cred_id == app_cred_id)
    if project_id is not None:
        events += [
            and_(RevocationEvent.user_id.is_(None), RevocationEvent.project_id == project_id),
            and_(RevocationEvent.user_id == user_id, RevocationEvent.project_id == project_id),
        ]
    revoked = exists().where(or_(*events), RevocationEvent.issued_before >= issued_at)
    return bool(session.scalar(select(revoked)))


def revoke(
    session: Session,
    *,
    user_id: str | None = None,
    project_id: str | None = None,
    app_cred_id: str | None = None,
) -> None:
    """Invalidate every token issued so far for the user, the project (or domain), the user on
    it, or the application credential."""
    session.add(
        RevocationEvent(
            user_id=user_id, project_id=project_id, app_cred_id=app_cred_id, issued_before=utcnow()
        )
    )
