"""Password checks with an account lockout after consecutive failures (Keystone's
[security_compliance] lockout_failure_attempts and lockout_duration).

Failures are counted per login subject (`AuthFailure`): the user's id, or for a user that does
not exist the id the login gave or an id-shaped stand-in for the name it gave. Unknown users
are counted, locked and answered like real ones, through the same statements and the same one
password check, so neither the lockout nor the time of an answer tells who exists.

An attempt is counted before its password is checked (`Lockout.attempt`), in a transaction of its
own: one INSERT … ON CONFLICT DO UPDATE … RETURNING the count, so that concurrent attempts, in
any number of API workers, each see the ones before them, and no more than
lockout_failure_attempts passwords are ever checked between two successes. An accepted
password forgets the count, also in a transaction of its own."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, exists, or_, select
from sqlalchemy.orm import Session

from kumo.config import Settings
from kumo.db import Database, utcnow
from kumo.errors import Unauthorized
from kumo.identity.models import AuthFailure, User
from kumo.identity.passwords import verify_password
from kumo.store.protocol import store_of

AUTH_REQUIRED = "The request you have made requires authentication."
# With lockout_duration 0 (locked until an admin steps in) the failures of users that do not
# exist are still forgotten after this long: anyone may make up names, and their rows must not
# pile up without bound.
UNKNOWN_SUBJECTS_FORGOTTEN_AFTER = dt.timedelta(days=1)


class WrongPassword(Unauthorized):
    """A password that did not match: Keystone's generic 401, whether or not the user exists."""

    def __init__(self) -> None:
        super().__init__(AUTH_REQUIRED)


class AccountLocked(Unauthorized):
    def __init__(self, subject: str) -> None:
        super().__init__(f"The account is locked for user: {subject}.")


@dataclass
class Attempt:
    """A password login under way: whose it is (None: not counted) and whether its password was
    accepted (`check_password`)."""

    subject: str | None = None
    accepted: bool = False


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

    @contextmanager
    def attempt(self, db: Database, subject_of: Callable[[Session], str] | None) -> Iterator[Attempt]:
        """Around the transaction that checks a password: first count the attempt of the
        subject `subject_of` finds as a failure, in a transaction of its own, and refuse it with
        AccountLocked, checking no password, when the subject's failures already reach the
        limit; afterwards, if the password was accepted, forget the failures (in a transaction
        of its own too: a login refused later, for its scope, is no failure). Also drops a few
        forgotten rows, so that names tried once do not pile up. With the lockout off or no
        `subject_of`, nothing is read or written."""
        limit = self.failure_attempts
        if not limit or subject_of is None:
            yield Attempt()
            return
        now = utcnow()
        with db.transaction() as session:
            subject = subject_of(session)
            attempts = self._count_attempt(session, limit, subject, now)
            _drop_forgotten(session, self._forgotten_before(now), now - UNKNOWN_SUBJECTS_FORGOTTEN_AFTER)
        if attempts > limit:
            raise AccountLocked(subject)
        attempt = Attempt(subject)
        try:
            yield attempt
        finally:
            if attempt.accepted:
                with db.transaction() as session:
                    reset(session, subject)

    def _count_attempt(self, session: Session, limit: int, subject: str, now: dt.datetime) -> int:
        """One statement: a forgotten count starts again at 1; a locked subject's stays past
        the limit (limit + 1, its last failure's time kept: a refused attempt does not extend
        the lock); any other grows by one. Returns the new count."""
        count: Any = AuthFailure.failed_auth_count
        last: Any = AuthFailure.failed_auth_at
        forgotten_before = self._forgotten_before(now)
        fresh = [] if forgotten_before is None else [last <= forgotten_before]
        new_count = case(*[(c, 1) for c in fresh], (count >= limit, limit + 1), else_=count + 1)
        new_at = case(*[(c, now) for c in fresh], (count >= limit, last), else_=now)
        statement: Any = (
            store_of(session)
            .insert(AuthFailure)
            .values(subject=_key(subject), failed_auth_count=1, failed_auth_at=now)
        )
        upsert = statement.on_conflict_do_update(
            index_elements=["subject"], set_={"failed_auth_count": new_count, "failed_auth_at": new_at}
        )
        return int(session.execute(upsert.returning(AuthFailure.failed_auth_count)).scalar_one())


def reset(session: Session, subject: str) -> None:
    """Forget the subject's failures (a successful login, an admin's unlock, a deleted user)."""
    session.execute(delete(AuthFailure).where(AuthFailure.subject == _key(subject)))


def _drop_forgotten(
    session: Session, forgotten_before: dt.datetime | None, unknown_before: dt.datetime, batch: int = 100
) -> None:
    """Drop a few rows whose failures no longer count, and (even when a lock lasts until an
    admin steps in) those of subjects that are no user's id, once older than `unknown_before`."""
    # Last in its transaction, and SKIP LOCKED (PostgreSQL): it waits for no row, so
    # concurrent failures cannot deadlock over each other's rows; what one skips, the next drops.
    unknown = and_(
        AuthFailure.failed_auth_at <= unknown_before,
        ~exists().where(User.id == AuthFailure.subject),
    )
    droppable: Any = unknown
    if forgotten_before is not None:
        droppable = or_(unknown, AuthFailure.failed_auth_at <= forgotten_before)
    stale = select(AuthFailure.subject).where(droppable).limit(batch).with_for_update(skip_locked=True)
    session.execute(delete(AuthFailure).where(AuthFailure.subject.in_(stale)))


def _key(subject: str) -> str:
    """A subject's row: the subject itself when it fits the column, else (only an unknown
    user's can be long or unprintable) its digest."""
    if len(subject) <= 64 and subject.isprintable():
        return subject
    return hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()


def check_password(attempt: Attempt, user: User | None, password: str) -> User:
    """The user, if `password` is theirs and they may log in; else WrongPassword, or the
    generic 401 for a disabled user. `user` is None for a user that does not exist: one password
    check against a dummy hash, as for a wrong password. The attempt was counted before
    (`Lockout.attempt`): an accepted one is forgotten, a refused one stays counted."""
    if not verify_password(password, user.password_hash if user else None) or user is None:
        raise WrongPassword()
    if not user.enabled:
        raise Unauthorized(AUTH_REQUIRED)
    attempt.accepted = True
    return user
