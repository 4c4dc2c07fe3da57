"""Which errors are the database's (retry the work later) and which the work's own data's."""

from __future__ import annotations

import pytest
from sqlalchemy import exc

from kumo.db.transient import describe, is_transient, without_parameters


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


def _out_of_range() -> exc.DataError:
    return exc.DataError(
        "UPDATE instances SET user_data=%(user_data)s",
        {"user_data": "password=hunter2"},
        ValueError("integer out of range"),
    )


def test_describe_names_the_drivers_error_without_statement_or_parameters() -> None:
    assert describe(_out_of_range()) == "ValueError: integer out of range"
    assert describe(KeyError("vcpus")) == "KeyError: 'vcpus'"


def test_without_parameters_hides_them_along_the_chain() -> None:
    inner = _out_of_range()
    assert "hunter2" in str(inner)
    outer = RuntimeError("placing failed")
    outer.__cause__ = inner
    assert without_parameters(outer) is outer
    assert "hunter2" not in str(inner)
    assert "UPDATE instances" in str(inner)  # the statement stays: it says where
