"""What counts as "the database is unavailable", over real exception instances."""

from __future__ import annotations

import errno

import asyncpg
import httpx
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import (
    AsyncAdapt_asyncpg_connection,
    AsyncAdapt_asyncpg_dbapi,
)

from expensura_events.db_errors import (
    error_fields,
    error_summary,
    is_transient,
    is_unavailable,
    sqlstate,
)

DBAPI = AsyncAdapt_asyncpg_dbapi(asyncpg)


def as_sqlalchemy_raises(driver_error: Exception, *, invalidated: bool = False) -> Exception:
    """Wrap a driver error exactly as SQLAlchemy's asyncpg dialect does on its way up."""
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(DBAPI, driver_error)
    except Exception as adapted:
        wrapped = sa_exc.DBAPIError.instance(
            "INSERT INTO t VALUES ($1)",
            ("secret@example.com",),
            adapted,
            DBAPI.Error,
            hide_parameters=True,
            connection_invalidated=invalidated,
        )
        wrapped.__cause__ = adapted
        return wrapped
    raise AssertionError("the dialect did not translate the error")


UNAVAILABLE = {
    "starting up (57P03)": asyncpg.exceptions.CannotConnectNowError(
        "the database system is starting up"
    ),
    "not yet accepting connections (57P03)": asyncpg.exceptions.CannotConnectNowError(
        "the database system is not yet accepting connections"
    ),
    "admin shutdown (57P01)": asyncpg.exceptions.AdminShutdownError(
        "terminating connection due to administrator command"
    ),
    "crash shutdown (57P02)": asyncpg.exceptions.CrashShutdownError(
        "terminating connection because of crash of another server process"
    ),
    "too many connections (53300)": asyncpg.exceptions.TooManyConnectionsError(
        "sorry, too many clients already"
    ),
    "connection failure (08006)": asyncpg.exceptions.ConnectionFailureError("connection failure"),
    "connection does not exist (08003)": asyncpg.exceptions.ConnectionDoesNotExistError(
        "connection was closed in the middle of operation"
    ),
    "driver interface error": asyncpg.exceptions.InterfaceError("connection is closed"),
}

DETERMINISTIC = {
    "NUL in text (22021)": asyncpg.exceptions.CharacterNotInRepertoireError(
        'invalid byte sequence for encoding "UTF8": 0x00'
    ),
    "unique violation (23505)": asyncpg.exceptions.UniqueViolationError(
        "duplicate key value violates unique constraint"
    ),
    "undefined column (42703)": asyncpg.exceptions.UndefinedColumnError("column does not exist"),
    "raise in a trigger (P0001)": asyncpg.exceptions.RaiseError("refused"),
}


@pytest.mark.parametrize("error", UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
def test_a_server_that_is_not_serving_is_unavailable_raw_or_wrapped(error: Exception) -> None:
    assert is_unavailable(error)
    wrapped = as_sqlalchemy_raises(error)
    assert is_unavailable(wrapped)
    assert is_transient(wrapped)


@pytest.mark.parametrize("error", DETERMINISTIC.values(), ids=DETERMINISTIC.keys())
def test_an_error_in_the_data_or_the_code_is_neither_unavailable_nor_transient(
    error: Exception,
) -> None:
    wrapped = as_sqlalchemy_raises(error)
    assert not is_unavailable(error) and not is_unavailable(wrapped)
    assert not is_transient(wrapped)


def test_an_invalidated_connection_is_unavailable_whatever_the_error() -> None:
    wrapped = as_sqlalchemy_raises(asyncpg.exceptions.UniqueViolationError("x"), invalidated=True)
    assert is_unavailable(wrapped)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
        ConnectionResetError(errno.ECONNRESET, "reset by peer"),
        OSError("Multiple exceptions: [Errno 111] Connect call failed, [Errno 99] …"),
        OSError(errno.EHOSTUNREACH, "No route to host"),
        TimeoutError(),
        httpx.ConnectError("refused"),
        sa_exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_network_failures_are_unavailable(error: Exception) -> None:
    assert is_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [FileNotFoundError(errno.ENOENT, "x"), PermissionError(errno.EACCES, "x"), ValueError("x")],
    ids=lambda e: type(e).__name__,
)
def test_local_errors_are_not_unavailable(error: Exception) -> None:
    assert not is_unavailable(error) and not is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
        asyncpg.exceptions.LockNotAvailableError("could not obtain lock"),
        asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_conflicts_that_a_retry_clears_are_transient_but_not_unavailable(error: Exception) -> None:
    wrapped = as_sqlalchemy_raises(error)
    assert is_transient(wrapped) and not is_unavailable(wrapped)


def test_descriptions_name_class_and_sqlstate_never_the_text_or_parameters() -> None:
    error = asyncpg.exceptions.UniqueViolationError(
        "duplicate key value violates unique constraint",
    )
    error.detail = "Key (email)=(secret@example.com) already exists."  # as the server sends it
    error.table_name, error.constraint_name = "accounts", "accounts_email_key"
    wrapped = as_sqlalchemy_raises(error)
    assert sqlstate(wrapped) == "23505"
    assert error_fields(wrapped) == {
        "error": "IntegrityError",
        "cause": "UniqueViolationError",
        "sqlstate": "23505",
    }
    summary = error_summary(wrapped)
    assert summary == (
        "UniqueViolationError SQLSTATE 23505 on table accounts, constraint accounts_email_key"
    )
    assert "secret" not in summary + repr(error_fields(wrapped))
