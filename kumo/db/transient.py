"""Telling the database's trouble from the data's: an error that retrying the same work may cure
(the connection went away, a lock or serialization conflict, a timeout) against one that the
work's own data causes every time (a value out of range, a NUL byte, a bug in handling it).

Whoever handles many independent units of work in a row (a scheduling pass, a batch of agents'
results) lets the first kind stop the whole run, to be retried later with nothing marked failed,
and blames the second kind on the one unit that raised it alone."""

from __future__ import annotations

from sqlalchemy import exc

# OperationalError covers lost connections, SQLite's "database is locked", PostgreSQL's
# serialization failures, deadlocks, lock and statement timeouts; InterfaceError a driver whose
# connection is no longer usable.
_TRANSIENT = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.DisconnectionError,
    exc.TimeoutError,  # the connection pool's: no connection to be had in time
    ConnectionError,
    TimeoutError,
)


def is_transient(error: BaseException) -> bool:
    """Whether `error` is the database's or the connection's rather than the work's own data's."""
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, _TRANSIENT)


def without_parameters(error: BaseException) -> BaseException:
    """`error`, with every SQLAlchemy statement error of its chain set to show its statement
    but not its bound parameters (which may hold secrets: user_data, passwords), in its message
    and in any traceback formatted or logged from now on."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, exc.StatementError):
            seen.hide_parameters = True
        seen = seen.__cause__ or seen.__context__
    return error


def describe(error: BaseException) -> str:
    """`Type: message` of an error for a user to read: for a SQLAlchemy statement error, the
    driver's error behind it (no statement, no parameters)."""
    if isinstance(error, exc.StatementError) and error.orig is not None:
        error = error.orig
    return f"{type(error).__name__}: {error}"
