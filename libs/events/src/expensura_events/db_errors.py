"""What a failure means, and how to name it without repeating what it carried.

One classification for the HTTP edge, the projection runner and the relay:

- `is_unavailable`: the database (or another dependency) cannot be reached or is not
  serving right now. Nothing committed; retrying later is the answer (HTTP 503, a batch
  retried, a relay that backs off).
- `is_transient`: unavailable, or a conflict that a retry clears (deadlock, serialisation
  failure, lock or statement timeout). A projection retries these rather than parking
  the event.

Everything else is deterministic: the same input fails the same way again.

Exception *text* is never logged or printed: a driver's message can carry values
(PostgreSQL's DETAIL quotes the row that violated a constraint; SQLAlchemy appends bound
parameters unless the engine hides them). `error_fields` and `error_summary` describe a
failure by class names, SQLSTATE codes and schema identifiers only.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import asyncpg
import httpx
from aiokafka.errors import KafkaError
from sqlalchemy import exc as sa_exc

# SQLSTATE classes and codes meaning "the server is not serving this connection now".
_UNAVAILABLE_CLASSES = ("08", "53")  # connection exception; insufficient resources
_UNAVAILABLE_CODES = frozenset(
    {
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: starting up, not yet accepting connections
        "57P04",  # database_dropped
        "57P05",  # idle_session_timeout
    }
)
# Conflicts and timeouts that a retry of the same work clears.
_TRANSIENT_CLASSES = ("40", "58")  # transaction rollback; system error (I/O)
_TRANSIENT_CODES = frozenset({"55P03", "57014"})  # lock_not_available, query_canceled

_ASYNCPG_UNAVAILABLE = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.InterfaceError,  # the driver's "connection is closed"
)
_UNREACHABLE_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ETIMEDOUT,
        errno.EPIPE,
        errno.EADDRNOTAVAIL,
    }
)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what it wraps (SQLAlchemy's `orig`, `raise … from`).

    Not `__context__`: an error raised while handling another is not caused by it.
    """
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nxt in (getattr(current, "orig", None), current.__cause__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE behind an exception, if any."""
    for e in causes(exc):
        code = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def _network_unreachable(e: BaseException) -> bool:
    if isinstance(e, ConnectionError | TimeoutError | socket.gaierror | socket.herror):
        return True
    if type(e) is OSError:
        # asyncio raises a bare OSError ("Multiple exceptions: … Connect call failed") when
        # every address of a host refused, so a bare one with no errno counts as well.
        return e.errno is None or e.errno in _UNREACHABLE_ERRNOS
    return False


def is_unavailable(exc: BaseException) -> bool:
    """The database or the network is not serving now; the work did not happen."""
    for e in causes(exc):
        if isinstance(
            e,
            sa_exc.OperationalError
            | sa_exc.InterfaceError
            | sa_exc.DisconnectionError
            | sa_exc.TimeoutError,  # the pool had no connection to give
        ):
            return True
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, _ASYNCPG_UNAVAILABLE):
            return True
        if _network_unreachable(e):
            return True
        if _is_dependency_unreachable(e):
            return True
    code = sqlstate(exc)
    return code is not None and (code[:2] in _UNAVAILABLE_CLASSES or code in _UNAVAILABLE_CODES)


def is_transient(exc: BaseException) -> bool:
    """Unavailable, or a conflict or timeout that retrying the same work clears."""
    if is_unavailable(exc):
        return True
    code = sqlstate(exc)
    return code is not None and (code[:2] in _TRANSIENT_CLASSES or code in _TRANSIENT_CODES)


def _is_dependency_unreachable(e: BaseException) -> bool:
    """Another service or the broker is unreachable (httpx transport errors, a 5xx answer,
    a retriable Kafka error)."""
    if isinstance(e, httpx.TransportError):
        return True
    if isinstance(e, httpx.HTTPStatusError) and e.response.status_code >= 500:
        return True
    return isinstance(e, KafkaError) and bool(getattr(e, "retriable", False))


def root_class(exc: BaseException) -> str:
    """The most specific class name: the driver's exception behind SQLAlchemy's wrapper."""
    name = type(exc).__name__
    for e in causes(exc):
        if isinstance(e, asyncpg.exceptions.PostgresError | asyncpg.exceptions.InterfaceError):
            return type(e).__name__
    return name


def error_fields(exc: BaseException) -> dict[str, str]:
    """Structured-log fields naming a failure without any of its text."""
    fields = {"error": type(exc).__name__}
    root = root_class(exc)
    if root != fields["error"]:
        fields["cause"] = root
    if (code := sqlstate(exc)) is not None:
        fields["sqlstate"] = code
    return fields


def error_summary(exc: BaseException) -> str:
    """One short line for people and tables: class, SQLSTATE and the schema objects involved
    (table, column, constraint names come from the schema, never from the data)."""
    parts = [root_class(exc)]
    if (code := sqlstate(exc)) is not None:
        parts.append(f"SQLSTATE {code}")
    for e in causes(exc):
        where = [
            f"{attr.removesuffix('_name')} {value}"
            for attr in ("table_name", "column_name", "constraint_name")
            if isinstance(value := getattr(e, attr, None), str) and value
        ]
        if where:
            parts.append("on " + ", ".join(where))
            break
    return " ".join(parts)
