"""The HTTP edge every service shares: app factory, health, the log feed, problem+json.

Errors are types in the domain; this is the one place they become HTTP (RFC 9457).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from expensura_events.auth import InvalidToken, Principal
from expensura_events.crypto import SubjectErased
from expensura_events.db_errors import error_fields, is_unavailable, sqlstate
from expensura_events.deadletters import open_dead_letters
from expensura_events.envelope import Actor
from expensura_events.privacy import ProcessingRestricted
from expensura_events.runtime import ServiceDefinition, ServiceRuntime
from expensura_events.settings import ServiceSettings
from expensura_events.store import EventStore, StreamVersionConflict
from expensura_events.tracing import configure_tracing
from expensura_events.unhandled import AnswerUnhandledErrors
from expensura_events.vocabulary import ActorKind, Purpose

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


class BodySizeLimit:
    """Refuse request bodies over the limit with 413 before the app reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await problem_response(
                413, "Payload too large", f"Bodies are limited to {self.max_bytes} bytes."
            )(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await problem_response(
                413, "Payload too large", f"Bodies are limited to {self.max_bytes} bytes."
            )(scope, receive, send)


class _TooLarge(Exception):
    pass


def runtime(request: Request) -> ServiceRuntime:
    rt: ServiceRuntime = request.app.state.runtime
    return rt


Runtime = Annotated[ServiceRuntime, Depends(runtime)]


class NotAuthenticated(Problem):
    status, title = 401, "Not authenticated"


class Forbidden(Problem):
    status, title = 403, "Forbidden"


async def principal(request: Request, rt: Runtime) -> Principal:
    """The caller, from `Authorization: Bearer <access token>` (issued by identity)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("Send an access token: Authorization: Bearer <token>.")
    try:
        return await rt.token_verifier.verify(token.strip())
    except InvalidToken as exc:
        raise NotAuthenticated(f"The access token was refused: {exc}.") from None


async def user(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    if caller.kind is not ActorKind.USER:
        raise Forbidden("This endpoint is for app users.")
    return caller


CurrentPrincipal = Annotated[Principal, Depends(principal)]
CurrentUser = Annotated[Principal, Depends(user)]


def staff_with(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Staff who passed MFA and hold one of `roles` (least privilege, SEC-2)."""

    async def check(caller: Annotated[Principal, Depends(principal)]) -> Principal:
        if caller.kind is not ActorKind.STAFF:
            raise Forbidden("This endpoint is for staff.")
        if not caller.mfa:
            raise Forbidden("Personal data needs a second factor: sign in with your TOTP code.")
        if roles and not caller.roles & set(roles):
            raise Forbidden(f"Needs one of the roles: {', '.join(sorted(roles))}.")
        return caller

    return check


class Health(BaseModel):
    status: str
    service: str


class Readiness(BaseModel):
    status: str
    service: str
    checks: dict[str, bool]


class LogRecord(BaseModel):
    seq: int
    event_id: str
    event_type: str
    stream_id: str
    subject_id: str | None
    record: str
    hash: str


class LogPage(BaseModel):
    events: list[LogRecord]
    head: int


class RelayStatus(BaseModel):
    published: int
    last_seq: int
    errors: int
    republished_from_start: int


class ProjectionStatus(BaseModel):
    applied: int
    duplicates: int
    errors: int
    dead_lettered: int = 0  # events this process parked since it started
    dead_letters: int | None = None  # open (parked or retried) now; None: database down


class SubjectData(BaseModel):
    service: str
    events: list[dict[str, Any]]
    read_models: dict[str, dict[str, list[dict[str, Any]]]]


class WorkerStatus(BaseModel):
    relay: RelayStatus
    projections: dict[str, ProjectionStatus]


def create_app(
    definition: ServiceDefinition,
    settings_factory: Callable[[], ServiceSettings] | None = None,
    on_startup: Callable[[ServiceRuntime], Awaitable[None]] | None = None,
) -> FastAPI:
    name = definition.spec.name

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_tracing(f"expensura-{name}")
        settings = (settings_factory or definition.settings_class)()
        rt = ServiceRuntime(definition, settings)
        app.state.runtime = rt
        if on_startup is not None:
            await on_startup(rt)
        if settings.workers:
            rt.start_workers()
        log.info("service.started", service=name)
        try:
            yield
        finally:
            await rt.close()

    app = FastAPI(
        title=f"Expensura {name} service",
        version="0.1.0",
        description=definition.description,
        lifespan=lifespan,
    )
    install_problem_handlers(app)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> Health:
        """The process is alive."""
        return Health(status="ok", service=name)

    @app.get(
        "/readyz",
        tags=["operations"],
        response_model=Readiness,
        responses={503: {"model": Readiness}},
    )
    async def readyz(rt: Runtime) -> Any:
        """Its database, the key store and the broker answer; 503 otherwise."""
        checks = await rt.readiness()
        ok = all(checks.values())
        body = Readiness(status="ready" if ok else "unavailable", service=name, checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    @app.get("/internal/log", tags=["internal"])
    async def log_feed(
        rt: Runtime,
        after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> LogPage:
        """The log as stored (personal fields stay encrypted), in sequence order.

        Other services follow it to rebuild their read models; it is not for partners.
        """
        async with rt.engine.connect() as conn:
            records = await EventStore.read_records(conn, after, limit)
            head, _ = await EventStore.head(conn)
        return LogPage(
            head=head,
            events=[
                LogRecord(
                    seq=r.seq,
                    event_id=r.event_id,
                    event_type=r.event_type,
                    stream_id=r.stream_id,
                    subject_id=r.subject_id,
                    record=r.record.decode(),
                    hash=r.hash.hex(),
                )
                for r in records
            ],
        )

    @app.get("/internal/workers", tags=["internal"])
    async def workers(rt: Runtime) -> WorkerStatus:
        """What this process's relay and projections have done since it started, and how
        many dead letters wait for an operator (`expensura projections dead-letters`)."""
        parked = await open_dead_letters(rt.engine)
        return WorkerStatus(
            relay=RelayStatus(
                published=rt.relay.stats.published,
                last_seq=rt.relay.stats.last_seq,
                errors=rt.relay.stats.errors,
                republished_from_start=rt.relay.stats.republish_from_start,
            ),
            projections={
                r.projection.name: ProjectionStatus(
                    applied=r.stats.applied,
                    duplicates=r.stats.duplicates,
                    errors=r.stats.errors,
                    dead_lettered=r.stats.dead_lettered,
                    dead_letters=None if parked is None else parked.get(r.projection.name, 0),
                )
                for r in rt.runners
            },
        )

    @app.get("/v1/me/data", tags=["rights"], responses={401: {}, 409: {}})
    async def my_data(caller: CurrentUser, rt: Runtime) -> SubjectData:
        """Everything this service holds about the caller (RGT-1): its log entries about
        them, decrypted, and its read models' rows. Identity gathers these into the export."""
        async with rt.engine.begin() as conn:
            events = await rt.store.read_subject(conn, caller.id)
            read_models: dict[str, dict[str, list[Any]]] = {}
            for runner in rt.runners:
                rows = await runner.projection.subject_rows(conn, caller.id)
                if any(rows.values()):
                    read_models[runner.projection.name] = rows
            await rt.record_access(
                conn,
                subject_id=caller.id,
                actor=Actor(kind=ActorKind.USER, id=caller.id),
                purpose=Purpose.ACCOUNT_MANAGEMENT,
                fields=["*"],
                categories=["all"],
                case_reference="subject-access-request",
            )
        return SubjectData(
            service=name,
            events=[jsonable_encoder(e.model_dump(mode="json")) for e in events],
            read_models=jsonable_encoder(read_models),
        )

    for router in definition.routers:
        app.include_router(router)
    app.add_middleware(BodySizeLimit, max_bytes=1_000_000)
    app.add_middleware(AnswerUnhandledErrors, respond=unexpected_failure)  # outermost of ours
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz")
    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    return app
