"""Password checks with an account lockout after consecutive failures (Keystone's
[security_compliance] lockout_failure_attempts and lockout_duration).

Failures are counted per login subject (`AuthFailure`): the user's id, or for a user that does
not exist the id the login gave or an id-shaped stand-in for the name it gave. Unknown users
are counted, locked and answered like real ones, through the same statements and the same one
password check, so neither the lockout nor the time of an answer tells who exists.

Counting is one INSERT … ON CONFLICT DO UPDATE SET count = count + 1: concurrent failures, in
any number of API workers, are all counted. A refused password rolls back the transaction that
found it, so it is counted in a transaction of its own (`counting_failures`)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kumo.config import Settings
from kumo.db import Database, utcnow
from kumo.errors import Unauthorized
from kumo.identity.models import AuthFailure, User
from kumo.identity.passwords import verify_password

AUTH_REQUIRED = "The request you have made requires authentication."


class WrongPassword(Unauthorized):
    """A password that did not match: Keystone's generic 401, whether or not the user exists."""

    def __init__(self, subject: str, at: dt.datetime) -> None:
        super().__init__(AUTH_REQUIRED)
        self.subject = subject
        self.at = at


class AccountLocked(Unauthorized):
    def __init__(self, subject: str) -> None:
        super().__init__(f"The account is locked for user: {subject}.")


@dataclass(frozen=True)
class Lockout:
    """`failure_attempts` consecutive failures lock a subject until `duration_seconds` after the
    last of them (0: until reset); failures older than that are forgotten. With
    `failure_attempts` None the lockout is off: nothing is read or written."""

    failure_attempts: int | None = None
    duration_seconds: int = 1800

    @classmethod
    def of(cls, settings: Settings) -> Lockout:
        return cls(settings.lockout_failure_attempts, settings.lockout_duration)

    def _forgotten_before(self, now: dt.datetime) -> dt.datetime | None:
        return now - dt.timedelta(seconds=self.duration_seconds) if self.duration_seconds else None

    def failures(self, session: Session, subject: str, now: dt.datetime) -> int:
        """The subject's consecutive failures that still count (0 with the lockout off)."""
        if not self.failure_attempts:
            return 0
        row = session.execute(
            select(AuthFailure.failed_auth_count, AuthFailure.failed_auth_at).where(
                AuthFailure.subject == _key(subject)
            )
        ).first()
        if row is None:
            return 0
        forgotten_before = self._forgotten_before(now)
        if forgotten_before is not None and row.failed_auth_at <= forgotten_before:
            return 0
        return int(row.failed_auth_count)

    def locks(self, failures: int) -> bool:
        return self.failure_attempts is not None and 0 < self.failure_attempts <= failures

    def count_failure(self, session: Session, subject: str, now: dt.datetime) -> None:
        """One more failure, in one statement (a forgotten count starts again at 1). Also
        drops a few forgotten rows: names that were tried once do not pile up."""
        if not self.failure_attempts:
            return
        count: Any = AuthFailure.failed_auth_count + 1
        forgotten_before = self._forgotten_before(now)
        if forgotten_before is not None:
            count = case((AuthFailure.failed_auth_at <= forgotten_before, 1), else_=count)
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        statement = insert(AuthFailure).values(subject=_key(subject), failed_auth_count=1, failed_auth_at=now)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["subject"], set_={"failed_auth_count": count, "failed_auth_at": now}
            )
        )
        if forgotten_before is not None:
            _drop_forgotten(session, forgotten_before)


def reset(session: Session, subject: str) -> None:
    """Forget the subject's failures (a successful login, an admin's unlock, a deleted user)."""
    session.execute(delete(AuthFailure).where(AuthFailure.subject == _key(subject)))


def _drop_forgotten(session: Session, forgotten_before: dt.datetime, batch: int = 100) -> None:
    # Last in its transaction, and SKIP LOCKED (PostgreSQL): it waits for no row, so
    # concurrent failures cannot deadlock over each other's rows; what one skips, the next drops.
    stale = (
        select(AuthFailure.subject)
        .where(AuthFailure.failed_auth_at <= forgotten_before)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    session.execute(delete(AuthFailure).where(AuthFailure.subject.in_(stale)))


def _key(subject: str) -> str:
    """A subject's row: the subject itself when it fits the column, else (only an unknown
    user's can be long or unprintable) its digest."""
    if len(subject) <= 64 and subject.isprintable():
        return subject
    return hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()


def check_password(
    session: Session, lockout: Lockout, subject: str, user: User | None, password: str
) -> User:
    """The user, if `password` is theirs and they may log in; else AccountLocked while the
    subject is locked (no password check, for anyone), WrongPassword, or the generic 401 for a
    disabled user. `user` is None for a user that does not exist: one password check against a
    dummy hash, as for a wrong password. Success forgets the subject's failures."""
    now = utcnow()
    failures = lockout.failures(session, subject, now)
    if lockout.locks(failures):
        raise AccountLocked(subject)
    if not verify_password(password, user.password_hash if user else None) or user is None:
        raise WrongPassword(subject, now)
    if not user.enabled:
        raise Unauthorized(AUTH_REQUIRED)
    if failures:
        reset(session, subject)
    return user


@contextmanager
def counting_failures(db: Database, lockout: Lockout) -> Iterator[None]:
    """Around a transaction that checks a password: a WrongPassword leaving it (and rolling it
    back) is counted in a transaction of its own, then goes on."""
    try:
        yield
    except WrongPassword as refused:
        if lockout.failure_attempts:
            with db.transaction() as session:
                lockout.count_failure(session, refused.subject, refused.at)
        raise
