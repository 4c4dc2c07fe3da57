"""Which errors are the database's (retry the work later) and which the work's own data's."""

from __future__ import annotations

import pytest
from sqlalchemy import exc

from kumo.db.transient import is_transient


def _wrapped(kind: type[exc.DBAPIError], invalidated: bool = False) -> exc.DBAPIError:
    return kind("SELECT 1", {}, Exception("driver error"), connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_wrapped(exc.OperationalError), True),  # lost connection, lock timeout, serialization
        (_wrapped(exc.InterfaceError), True),
        (_wrapped(exc.DataError, invalidated=True), True),
        (exc.DisconnectionError("gone"), True),
        (exc.TimeoutError("pool exhausted"), True),
        (ConnectionResetError("reset by peer"), True),
        (TimeoutError("timed out"), True),
        (_wrapped(exc.DataError), False),  # integer out of range, a NUL byte
        (_wrapped(exc.IntegrityError), False),
        (_wrapped(exc.ProgrammingError), False),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), False),
        (ValueError("invalid literal for int() with base 10: 'abc'"), False),
        (KeyError("vcpus"), False),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
