"""problem+json (RFC 9457): the one place errors become HTTP.

Errors are types in the domain and the library; `install_problem_handlers` maps the
library's own (stream conflicts, restricted or erased subjects, four-eyes refusals,
unreachable dependencies)
and every `Problem` a route raises. The shared `Problem` kinds below cover what most
routes need; a route declares its own subclass only for a title of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from expensura_events.cipher import SubjectErased
from expensura_events.db_errors import error_fields, is_unavailable, sqlstate
from expensura_events.four_eyes import AlreadyDecided, NotAnApprover
from expensura_events.passwords import HashingOverloaded
from expensura_events.privacy.restrictions import ProcessingRestricted
from expensura_events.store import StreamVersionConflict

log = structlog.get_logger("expensura.http")
PROBLEM = "application/problem+json"


class Problem(Exception):
    """A failure the client can act on, rendered as problem+json."""

    status = 400
    title = "Bad request"
    type = "about:blank"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail, self.extra = detail, extra


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    type_: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _unavailable(what: str) -> JSONResponse:
    return problem_response(
        503,
        "Service unavailable",
        f"{what} is unreachable; nothing was changed. Retry later.",
        headers={"Retry-After": "2"},
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if exc.status in (429, 503):
            headers = {"Retry-After": str(exc.extra.pop("retry_after", 5))}
        return problem_response(
            exc.status, exc.title, exc.detail, exc.type, headers=headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return problem_response(
            422,
            "Invalid request",
            "The request does not match the schema; nothing was changed.",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(StreamVersionConflict)
    async def _conflict(_: Request, exc: StreamVersionConflict) -> JSONResponse:
        return problem_response(409, "Conflict", str(exc), expected=exc.expected, actual=exc.actual)

    @app.exception_handler(ProcessingRestricted)
    async def _restricted(_: Request, exc: ProcessingRestricted) -> JSONResponse:
        return problem_response(409, "Processing stopped", str(exc), state=exc.state)

    @app.exception_handler(SubjectErased)
    async def _erased(_: Request, exc: SubjectErased) -> JSONResponse:
        return problem_response(410, "Data subject erased", str(exc))

    # Four eyes (four_eyes.py), the same answer on every route that decides a request.
    @app.exception_handler(NotAnApprover)
    async def _not_an_approver(_: Request, exc: NotAnApprover) -> JSONResponse:
        return problem_response(403, "A second officer must decide", str(exc))

    @app.exception_handler(AlreadyDecided)
    async def _already_decided(_: Request, exc: AlreadyDecided) -> JSONResponse:
        return problem_response(409, "Not pending", str(exc))

    @app.exception_handler(HashingOverloaded)
    async def _hashing(_: Request, exc: HashingOverloaded) -> JSONResponse:
        return _unavailable("Password checking")

    @app.exception_handler(OSError)
    async def _os(request: Request, exc: OSError) -> JSONResponse:
        return unexpected_failure(exc, request.url.path)

    @app.exception_handler(DBAPIError)
    async def _db(request: Request, exc: DBAPIError) -> JSONResponse:
        return unexpected_failure(exc, request.url.path)

    # Anything else is answered by AnswerUnhandledErrors (see create_app), not by an
    # `Exception` handler: Starlette re-raises after those, which drops the connection.


def unexpected_failure(exc: BaseException, path: str | None = None) -> JSONResponse:
    """503 with Retry-After when a dependency is unavailable (is_unavailable), else 500.
    Logged by class name and SQLSTATE only."""
    if is_unavailable(exc):
        log.warning("dependency.unavailable", path=path, **error_fields(exc))
        database = isinstance(exc, DBAPIError) or sqlstate(exc) is not None
        return _unavailable("The database" if database else "A dependency")
    log.error("unhandled", path=path, **error_fields(exc))
    return problem_response(500, "Internal error", "The request failed.")


class NotAuthenticated(Problem):
    status, title = 401, "Not authenticated"


class Forbidden(Problem):
    status, title = 403, "Forbidden"


class NotFound(Problem):
    status, title = 404, "Not found"


class Conflict(Problem):
    status, title = 409, "Conflict"


class Unavailable(Problem):
    """A dependency did not answer; nothing was changed (503 with Retry-After)."""

    status, title = 503, "A dependency is unavailable"
