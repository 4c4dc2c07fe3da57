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
