"""Incidents raised automatically, against real databases (SEC-4).

Loans' risk signals, appended to loans' log (signed, the device sealed), applied to
incident's projection as the runner applies them (verified): a burst of a security kind
raises one incident and attaches the rest, a redelivery or a rebuild raises nothing, fraud
screening raises nothing, a closed incident gives way to a new one. A forged record parked
by two of a service's projections is reported once in that service's log, in the dead
letter's transaction, with nothing the forger wrote; the report raises an incident. Then the
internal route `log verify` calls: only a service, about its own log, once per finding.
Every incident's events carry `system:<source>` and nothing personal."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence

import httpx
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from sqlalchemy import select

from expensura_events.catalog.incident_response import CauseAttached, IncidentReported
from expensura_events.catalog.loans_risk import RiskSignalKind, RiskSignalRaised
from expensura_events.catalog.platform import ForgedEventRejected
from expensura_events.deadletters import Delivery
from expensura_events.envelope import Actor, EventEnvelope
from expensura_events.forgeries import forgery_stream
from expensura_events.mapper import EventMapper
from expensura_events.projections import (
    LocalLogFeed,
    Outcome,
    Projection,
    apply_deliveries,
    rebuild,
)
from expensura_events.runtime import ServiceDefinition, ServiceRuntime
from expensura_events.store import StoredRecord
from expensura_events.tables import event_log, projection_dead_letters
from expensura_events.testing.events import forged_account_opened
from expensura_events.topology import service
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_events.web.app import create_app
from expensura_incident.alerts import service as alerts_service
from expensura_incident.alerts.domain import forged_record_cause
from expensura_incident.alerts.projection import AutoRaisedIncidents
from expensura_incident.app import service_definition
from expensura_incident.exposure.projection import ExposureIndex
from expensura_incident.response import service as response
from expensura_incident.response.domain import IncidentState, Source
from expensura_incident.tables import auto_raised_causes, incidents
from expensura_ops.testing.stack import LocalStack

pytestmark = pytest.mark.obligation("SEC-4")

DEVICE = "ab" * 32  # a device's keyed hash, as loans' edge computes it


@pytest.fixture(scope="module")
async def provisioned(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    stack = LocalStack(pg_admin_url, kafka_bootstrap, tmp_path_factory.mktemp("alerts"))
    await stack.provision()
    try:
        yield stack
    finally:
        await stack.drop()


@pytest.fixture(scope="module")
async def runtimes(provisioned: LocalStack) -> AsyncIterator[dict[str, ServiceRuntime]]:
    """Incident, and loans and identity as they append to their own logs."""

    def as_(name: str, *projections: Callable[[], Projection]) -> ServiceDefinition:
        return dataclasses.replace(
            service_definition, spec=service(name), projections=projections, workers=()
        )

    out = {"incident": ServiceRuntime(service_definition, provisioned.settings("incident"))}
    out["loans"] = ServiceRuntime(as_("loans"), provisioned.settings("loans"))
    # A read model of every topic, beside its witness of loans': two runners that each park
    # a forgery on loans' topic (what it would apply does not matter: nothing forged applies).
    out["identity"] = ServiceRuntime(
        as_("identity", ExposureIndex), provisioned.settings("identity")
    )
    try:
        yield out
    finally:
        for rt in out.values():
            await rt.close()


@pytest.fixture(scope="module")
def rt(runtimes: dict[str, ServiceRuntime]) -> ServiceRuntime:
    return runtimes["incident"]


def alerts(rt: ServiceRuntime) -> Projection:
    [found] = [r.projection for r in rt.runners if r.projection.name == AutoRaisedIncidents.name]
    return found


async def signal(loans: ServiceRuntime, kind: RiskSignalKind) -> StoredRecord:
    """A risk signal as loans' screening appends it; its stored (signed) record."""
    applicant = str(uuid.uuid4())
    payload = RiskSignalRaised(
        application_id=uuid.uuid4(),
        kind=kind,
        evidence={"subjects": 5, "window_days": 30},
        device_id=DEVICE,
    )
    envelope = loans.envelope(
        payload,
        stream_id=f"risk-{payload.application_id}",
        subject_id=applicant,
        actor=Actor.system("loans.risk"),
        purpose=Purpose.SECURITY,
    )
    async with loans.engine.begin() as conn:
        [recorded] = await loans.append(conn, [envelope])
    async with loans.engine.connect() as conn:  # in the log once committed (the sequencer)
        [stored] = [
            r
            for r in await loans.store.read_records(conn, 0, 100_000)
            if str(r.event_id) == str(recorded.event_id)
        ]
    return stored


async def deliver(rt: ServiceRuntime, source: str, records: Sequence[StoredRecord]) -> Outcome:
    """The records into incident's projection as its runner applies a batch (verified)."""
    async with rt.engine.begin() as conn:
        return await apply_deliveries(
            conn,
            alerts(rt),
            rt.mapper,
            [
                Delivery(
                    source,
                    r.event_id,
                    r.record,
                    r.seq,
                    r.event_type,
                    r.signature,
                    r.signing_key_id,
                )
                for r in records
            ],
            {},
            resolved_by="test",
        )


async def incident_of(rt: ServiceRuntime, occurrence_event: str) -> uuid.UUID | None:
    async with rt.engine.connect() as conn:
        found = await conn.execute(
            select(auto_raised_causes.c.incident_id).where(
                auto_raised_causes.c.occurrence == f"event:{occurrence_event}"
            )
        )
        return found.scalar_one_or_none()


async def stream(rt: ServiceRuntime, incident_id: uuid.UUID) -> list[EventEnvelope]:
    async with rt.engine.connect() as conn:
        return await rt.store.read_stream(conn, f"incident-{incident_id}")


async def records_of(rt: ServiceRuntime, stream_id: str) -> list[bytes]:
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(event_log.c.record).where(event_log.c.stream_id == stream_id)
        )
        return [bytes(r.record) for r in rows]


async def open_incidents_from(rt: ServiceRuntime, source: Source) -> list[uuid.UUID]:
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(incidents.c.incident_id).where(
                incidents.c.source == source.value,
                incidents.c.state != IncidentState.CLOSED.value,
            )
        )
        return [r.incident_id for r in rows]


async def close_all(rt: ServiceRuntime, ids: list[uuid.UUID]) -> None:
    """The team closes them (direct: the workflow's own tests prove the steps)."""
    async with rt.engine.begin() as conn:
        await conn.execute(
            incidents.update()
            .where(incidents.c.incident_id.in_(ids))
            .values(state=IncidentState.CLOSED.value)
        )


# --- risk signals ---------------------------------------------------------------------------


async def test_a_burst_of_security_signals_raises_one_incident_and_attaches_the_rest(
    runtimes: dict[str, ServiceRuntime], rt: ServiceRuntime
) -> None:
    await close_all(rt, await open_incidents_from(rt, Source.RISK_SIGNAL))
    loans = runtimes["loans"]
    burst = [await signal(loans, RiskSignalKind.DEVICE_ON_MANY_ACCOUNTS) for _ in range(25)]
    first = await deliver(rt, "loans", burst[:10])
    second = await deliver(rt, "loans", burst[10:])
    assert len(first.applied) + len(second.applied) == 25 and not first.parked + second.parked

    [iid] = {await incident_of(rt, r.event_id) for r in burst}
    assert iid is not None
    view = await response.incident_view(rt, iid)
    assert view.incident.source is Source.RISK_SIGNAL
    assert view.incident.reported_by == "system:risk-signal"
    assert "device-on-many-accounts" in view.incident.summary
    assert [e.kind for e in view.timeline] == ["report"] + ["attach-cause"] * 24
    events = await stream(rt, iid)
    assert isinstance(events[0].payload, IncidentReported)
    assert all(isinstance(e.payload, CauseAttached) for e in events[1:])
    assert [e.causation_id for e in events] == [uuid.UUID(str(r.event_id)) for r in burst]
    assert {(e.actor.kind, e.actor.id, e.subject_id) for e in events} == {
        (ActorKind.SYSTEM, "system:risk-signal", None)
    }
    # Nothing personal: not the device, not the applicants.
    for record in await records_of(rt, f"incident-{iid}"):
        assert DEVICE.encode() not in record

    # Redelivered (the broker, the relay replaying): nothing new.
    again = await deliver(rt, "loans", burst)
    assert again.applied == [] and again.duplicates == 25
    assert len(await stream(rt, iid)) == 25

    # Another security kind is another incident; screening signals are none.
    takeover = await signal(loans, RiskSignalKind.PAYOUT_ACCOUNT_CHANGED)
    screening = [
        await signal(loans, kind)
        for kind in (
            RiskSignalKind.DEVICE_VELOCITY,
            RiskSignalKind.CARD_VELOCITY,
            RiskSignalKind.SUBJECT_VELOCITY,
            RiskSignalKind.UNVERIFIED_DEVICE_OWNER,
        )
    ]
    await deliver(rt, "loans", [takeover, *screening])
    other = await incident_of(rt, takeover.event_id)
    assert other is not None and other != iid
    assert [await incident_of(rt, r.event_id) for r in screening] == [None] * 4
    assert set(await open_incidents_from(rt, Source.RISK_SIGNAL)) == {iid, other}


async def test_once_the_incident_is_closed_the_next_signal_raises_a_new_one_and_a_rebuild_none(
    runtimes: dict[str, ServiceRuntime], rt: ServiceRuntime
) -> None:
    loans = runtimes["loans"]
    await close_all(rt, await open_incidents_from(rt, Source.RISK_SIGNAL))
    first = await signal(loans, RiskSignalKind.PAYOUT_ACCOUNT_CHANGED)
    await deliver(rt, "loans", [first])
    before = await incident_of(rt, first.event_id)
    assert before is not None
    await close_all(rt, [before])
    later = await signal(loans, RiskSignalKind.PAYOUT_ACCOUNT_CHANGED)
    await deliver(rt, "loans", [later])
    after = await incident_of(rt, later.event_id)
    assert after is not None and after != before

    # A rebuild empties the projection's inbox and replays the log: no incident again.
    async with rt.engine.connect() as conn:
        count_before = (await conn.execute(select(incidents.c.incident_id))).all()
    outcome = await rebuild(
        rt.engine,
        rt.mapper,
        alerts(rt),
        [LocalLogFeed(loans.engine, "loans", ["loans.RiskSignalRaised"])],
    )
    assert outcome.parked == [] and outcome.applied >= 2
    async with rt.engine.connect() as conn:
        assert len((await conn.execute(select(incidents.c.incident_id))).all()) == len(count_before)


# --- forged records ------------------------------------------------------------------------


def forged_message(topic: str, offset: int, record: bytes) -> ConsumerRecord[bytes, bytes]:
    data = json.loads(record)
    headers = [("event_id", data["event_id"].encode()), ("event_type", b"identity.AccountOpened")]
    return ConsumerRecord(topic, 3, offset, 0, 0, None, record, None, 0, len(record), headers)


async def test_a_forged_record_is_reported_once_by_its_service_and_raises_one_incident(
    runtimes: dict[str, ServiceRuntime], rt: ServiceRuntime
) -> None:
    identity = runtimes["identity"]
    await close_all(rt, await open_incidents_from(rt, Source.FORGED_EVENT))
    # Unsigned, an e-mail address in plaintext, on loans' topic: every follower refuses it.
    victim = str(uuid.uuid4())
    forgery = forged_account_opened(victim, "forged-victim@example.com")
    record = EventMapper.to_record(forgery, forgery.payload.model_dump(mode="json"))
    topic = identity.settings.kafka().topic("loans")
    followers = [r for r in identity.runners if "loans" in r.projection.sources]
    assert len(followers) >= 2
    for offset in (41, 41, 42):  # the same record redelivered, then published again
        for runner in followers:
            await runner._apply_batch(
                {TopicPartition(topic, 3): [forged_message(topic, offset, record)]}
            )

    async with identity.engine.connect() as conn:
        parked = (
            await conn.execute(
                select(projection_dead_letters.c.projection).where(
                    projection_dead_letters.c.event_id == forgery.event_id
                )
            )
        ).all()
        reports = await identity.store.read_stream(conn, forgery_stream("identity"))
        stored = [
            r
            for r in await identity.store.read_records(conn, 0, 100_000)
            if r.stream_id == forgery_stream("identity")
        ]
    assert len(parked) == len(followers)  # each projection parked it
    # ... and the service reported it once: the first parking, not the others nor the
    # redelivery (a new dead letter id would be a new record: the same id is the same).
    assert len(reports) == 1
    [report] = reports
    assert isinstance(report.payload, ForgedEventRejected)
    assert (report.payload.claimed_source, report.payload.topic) == ("loans", topic)
    assert (report.payload.partition, report.payload.offset) == (3, 41)
    assert report.payload.rejected_event_id == forgery.event_id
    assert report.payload.reason == "unsigned"
    assert report.payload.claimed_type == "identity.AccountOpened"
    assert report.subject_id is None and report.actor.id == "identity.projections"
    assert b"forged-victim" not in stored[0].record and victim.encode() not in stored[0].record

    # Incident reads identity's report (verified: identity signed it) and raises.
    await deliver(rt, "identity", stored)
    [iid] = await open_incidents_from(rt, Source.FORGED_EVENT)
    view = await response.incident_view(rt, iid)
    assert view.incident.reported_by == "system:forged-event"
    assert "loans" in view.incident.summary and "unsigned" in view.incident.summary
    [reported] = await stream(rt, iid)
    assert reported.causation_id == uuid.UUID(str(stored[0].event_id))
    # The same refused record reported by another service is the same occurrence.
    same = report.payload.model_copy(update={"projection": "verified-subjects"})
    async with rt.engine.begin() as conn:
        handled = await alerts_service.handle(rt, conn, forged_record_cause(same))
    assert handled.outcome is alerts_service.Outcome.ALREADY_SEEN and handled.incident_id == iid
    for record_bytes in await records_of(rt, f"incident-{iid}"):
        assert b"forged-victim" not in record_bytes


# --- broken logs, over the internal route -----------------------------------------------


@pytest.fixture
async def inside(rt: ServiceRuntime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service_definition)
    app.state.runtime = rt  # what the lifespan would set (not run here)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://incident"
    ) as client:
        yield client


async def test_a_broken_log_is_reported_by_its_own_service_once_per_finding(
    provisioned: LocalStack, rt: ServiceRuntime, inside: httpx.AsyncClient
) -> None:
    await close_all(rt, await open_incidents_from(rt, Source.LOG_VERIFY_FAILED))
    as_loans = provisioned.service_headers("incident", caller="loans")
    path = "/internal/broken-logs"
    raised = await inside.post(
        path, json={"service": "loans", "first_broken": 1042}, headers=as_loans
    )
    assert raised.status_code == 201, raised.text
    iid = uuid.UUID(raised.json()["incident_id"])
    assert raised.json()["outcome"] == "raised"
    again = await inside.post(
        path,
        json={"service": "loans", "first_broken": 1042},
        headers=provisioned.service_headers("incident", caller="loans"),
    )
    assert again.status_code == 200 and again.json() == {
        "incident_id": str(iid),
        "outcome": "already-seen",
    }
    rewrite = await inside.post(
        path,
        json={"service": "loans", "rewritten": True},
        headers=provisioned.service_headers("incident", caller="loans"),
    )
    assert rewrite.json() == {"incident_id": str(iid), "outcome": "attached"}
    view = await response.incident_view(rt, iid)
    assert view.incident.source is Source.LOG_VERIFY_FAILED
    assert view.incident.reported_by == "system:log-verify-failed"
    assert "loans's log chain broken at sequence 1042" in view.incident.summary
    assert [e.kind for e in view.timeline] == ["report", "attach-cause"]
    assert {e.actor.id for e in await stream(rt, iid)} == {"system:log-verify-failed"}


async def test_an_unauthenticated_or_foreign_caller_cannot_raise_an_incident(
    provisioned: LocalStack, rt: ServiceRuntime, inside: httpx.AsyncClient
) -> None:
    """The attack: raise incidents (or flood the team) without a service's key, or as one
    service about another's log."""
    await close_all(rt, await open_incidents_from(rt, Source.LOG_VERIFY_FAILED))
    path = "/internal/broken-logs"
    body = {"service": "identity", "first_broken": 7}
    nobody = await inside.post(path, json=body)
    assert nobody.status_code == 401
    forged_token = await inside.post(
        path, json=body, headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."}
    )
    assert forged_token.status_code == 401
    foreign = await inside.post(
        path, json=body, headers=provisioned.service_headers("incident", caller="loans")
    )
    assert foreign.status_code == 403
    assert "only its own log" in foreign.json()["detail"]
    nothing = await inside.post(
        path,
        json={"service": "identity"},
        headers=provisioned.service_headers("incident", caller="identity"),
    )
    assert nothing.status_code == 422
    assert await open_incidents_from(rt, Source.LOG_VERIFY_FAILED) == []
