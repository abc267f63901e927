"""The app factory every service shares: health, readiness, the log feed, worker status,
the subject's own data (RGT-1), and the service's routers behind problem+json and a body
limit."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import structlog
from fastapi import FastAPI, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as METRICS_TYPE
from pydantic import BaseModel

from expensura_events.deadletters import open_dead_letters
from expensura_events.fields import Identifier
from expensura_events.metrics import exposition
from expensura_events.privacy.access import subject_records
from expensura_events.runtime import ServiceDefinition, ServiceRuntime
from expensura_events.settings import ServiceSettings
from expensura_events.store import EventStore
from expensura_events.tracing import configure_tracing
from expensura_events.unhandled import AnswerUnhandledErrors
from expensura_events.web.auth import EVERY_SERVICE, CurrentUser, Runtime, callers, runtime_of
from expensura_events.web.metrics import METRICS_PATH, RecordRequests, scrape_readings
from expensura_events.web.middleware import BodySizeLimit
from expensura_events.web.problems import install_problem_handlers, unexpected_failure

log = structlog.get_logger("expensura.http")


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
    signature: str | None = None  # base64 of the appending service's Ed25519 signature
    signing_key_id: str | None = None


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
    # Records refused before any apply (authenticity.py), per reason, since it started.
    rejected: dict[str, int] = {}


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

    @app.get(
        METRICS_PATH,
        tags=["operations"],
        response_class=Response,
        responses={200: {"content": {METRICS_TYPE: {}}}},
    )
    async def metrics(rt: Runtime) -> Response:
        """The service's metrics in Prometheus's text format, exactly those of the metrics
        contract (deploy/README.md). On the internal listener only, for Prometheus; no
        label holds personal data (routes are templates)."""
        body = exposition(name, await scrape_readings(rt))
        # the text format 0.0.4: what generate_latest writes (every name is a classic one)
        return Response(body, media_type=METRICS_TYPE)

    @app.get("/internal/log", tags=["internal"], dependencies=[callers(*EVERY_SERVICE)])
    async def log_feed(
        rt: Runtime,
        after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
        event_type: Annotated[list[Identifier] | None, Query(max_length=20)] = None,
    ) -> LogPage:
        """The log as stored (personal fields stay encrypted), in sequence order.

        Other services follow it to rebuild their read models; it is not for partners.
        `event_type` (repeatable) keeps only records of those types: `expensura log verify`
        reads only the checkpoints a peer witnessed.
        """
        async with rt.engine.connect() as conn:
            records = await EventStore.read_records(conn, after, limit, event_type or ())
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
                    signature=None
                    if r.signature is None
                    else base64.b64encode(r.signature).decode(),
                    signing_key_id=r.signing_key_id,
                )
                for r in records
            ],
        )

    @app.get("/internal/workers", tags=["internal"], dependencies=[callers(*EVERY_SERVICE)])
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
                    rejected=dict(r.stats.rejected),
                )
                for r in rt.runners
            },
        )

    @app.get("/v1/me/data", tags=["rights"], responses={401: {}, 409: {}})
    async def my_data(caller: CurrentUser, rt: Runtime) -> SubjectData:
        """Everything this service holds about the caller (RGT-1): its log entries about
        them, decrypted, and its read models' rows. Identity gathers these into the export."""
        async with rt.engine.begin() as conn:
            held = await subject_records(
                rt, conn, caller.id, [runner.projection for runner in rt.runners]
            )
        return SubjectData(
            service=name,
            events=[jsonable_encoder(e.model_dump(mode="json")) for e in held.events],
            read_models=jsonable_encoder(held.read_models),
        )

    for router in definition.routers:
        app.include_router(router)
    app.add_middleware(BodySizeLimit, max_bytes=lambda: _body_limit(app))
    app.add_middleware(AnswerUnhandledErrors, respond=unexpected_failure)
    # Outermost of ours: it counts what the client got, the answers to failures included.
    app.add_middleware(RecordRequests, service=name)
    # One server span per request; not also a span per ASGI message received and sent
    # (two or three more per request, on every route, that say nothing the server span
    # does not).
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz", exclude_spans=["receive", "send"]
    )
    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    return app


def _body_limit(app: FastAPI) -> int:
    """The running service's `max_body_bytes`; the settings' default before its lifespan ran."""
    rt = getattr(app.state, "runtime", None)
    if rt is None:
        default: int = ServiceSettings.model_fields["max_body_bytes"].default
        return default
    return runtime_of(app).settings.max_body_bytes
