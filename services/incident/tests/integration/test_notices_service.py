"""Customer notices against a real database and a real SMTP relay (the stack's sink): a
requested notice reaches the customer's address once, with its title and body; the
outcome is recorded as a state and an event; an outage is retried; an erased subject is
sent nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from expensura_events.catalog.identity import AccountOpened
from expensura_events.catalog.incident_notices import (
    CustomerNoticeDelivered,
    CustomerNoticeDeliveryFailed,
    NoticeChannel,
)
from expensura_events.catalog.loans_notices import CustomerNoticeRequested, NoticeKind
from expensura_events.envelope import (
    REDACTED,
    Actor,
    DomainEvent,
    EventEnvelope,
    new_event_id,
    utcnow,
)
from expensura_events.notifications import MailSender
from expensura_events.runtime import ServiceRuntime
from expensura_events.store import EventStore
from expensura_events.vocabulary import CollectionChannel, Purpose
from expensura_incident.app import service_definition
from expensura_incident.contacts.projection import NotificationContacts
from expensura_incident.notices import domain, service, store
from expensura_incident.notices.domain import NoticeState
from expensura_incident.notices.projection import CustomerNotices
from expensura_incident.tables import customer_notices
from expensura_ops.testing.stack import SMTP_SINK, LocalStack, free_port

pytestmark = pytest.mark.obligation("USE-10")

OUTCOMES = [CustomerNoticeDelivered.event_type, CustomerNoticeDeliveryFailed.event_type]


@pytest.fixture(scope="module")
async def provisioned(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    stack = LocalStack(pg_admin_url, kafka_bootstrap, tmp_path_factory.mktemp("notices"))
    await stack.provision()
    try:
        yield stack
    finally:
        stack.stop_all()
        await stack.drop()


@pytest.fixture(scope="module")
def sink(provisioned: LocalStack) -> Iterator[LocalStack]:
    provisioned.start_smtp_sink()
    yield provisioned


@pytest.fixture
async def rt(provisioned: LocalStack) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime(service_definition, provisioned.settings("incident"))
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
def relay(sink: LocalStack, rt: ServiceRuntime) -> MailSender:
    return MailSender(f"smtp://127.0.0.1:{sink.ports[SMTP_SINK]}", rt.settings.mail_from)


def _event(source: str, subject: str, payload: DomainEvent) -> EventEnvelope:
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source=source,
        stream_id=f"{source}-{subject}",
        stream_version=0,
        subject_id=subject,
        actor=Actor.system("tests"),
        purpose=Purpose.COMMUNICATION,
        correlation_id=new_event_id(),
        payload=payload,
    )


async def _customer(rt: ServiceRuntime, email: str) -> str:
    """A subject incident knows from identity's sign-up; `REDACTED`: the sign-up's address
    no longer opens, so the contact copy holds only the phone."""
    subject = str(uuid.uuid4())
    contacts = NotificationContacts()
    contacts.bind(rt)
    opened = AccountOpened.model_construct(
        account_id=uuid.UUID(subject),
        email=email,
        phone="+14155550100",
        channel=CollectionChannel.PROVIDED_BY_USER,
    )
    async with rt.engine.begin() as conn:
        await contacts.apply(conn, _event("identity", subject, opened))
    return subject


async def _request(
    rt: ServiceRuntime, subject: str, body: str, *, notice_id: uuid.UUID | None = None
) -> uuid.UUID:
    """Loans' request, applied as the projection's runner would apply it (opened)."""
    notice_id = notice_id or uuid.uuid4()
    requested = CustomerNoticeRequested(
        notice_id=notice_id,
        kind=NoticeKind.ADVERSE_ACTION,
        title="Your loan application",
        body=body,
    )
    projection = CustomerNotices()
    projection.bind(rt)
    async with rt.engine.begin() as conn:
        await projection.apply(conn, _event("loans", subject, requested))
    return notice_id


async def _outcomes(rt: ServiceRuntime, notice_id: uuid.UUID) -> list[EventEnvelope]:
    """The outcome events incident recorded about this notice, in log order."""
    async with rt.engine.connect() as conn:
        records = await EventStore.read_records(conn, 0, 10_000, OUTCOMES)
    events = [await rt.mapper.from_record(r.record) for r in records]
    return [e for e in events if getattr(e.payload, "notice_id", None) == notice_id]


async def _state(rt: ServiceRuntime, notice_id: uuid.UUID) -> domain.CustomerNotice:
    found = await service.find(rt, notice_id)
    assert found is not None
    return found


def _now() -> datetime:
    return utcnow()


async def test_a_requested_notice_is_delivered_once_with_its_title_and_body(
    rt: ServiceRuntime, relay: MailSender, sink: LocalStack
) -> None:
    email = f"notice-{uuid.uuid4().hex[:8]}@example.com"
    subject = await _customer(rt, email)
    body = "We could not approve your application. Principal reasons: debt-to-income ratio."
    notice_id = await _request(rt, subject, body)
    await _request(rt, subject, body, notice_id=notice_id)  # loans asked twice: one notice
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(customer_notices).where(customer_notices.c.notice_id == notice_id)
            )
        ).one()
    assert "debt-to-income" not in json.dumps(row._asdict(), default=str)  # sealed (SEC-1)

    await service.deliver_due_notices(rt, relay, _now())

    [mail] = sink.wait_for_mail(email, 1)
    assert mail.subject == "Your loan application"
    assert mail.body.strip() == body
    notice = await _state(rt, notice_id)
    assert notice.state is NoticeState.COMPLETED and notice.attempts == 1
    [event] = await _outcomes(rt, notice_id)
    assert event.payload == CustomerNoticeDelivered(
        notice_id=notice_id, kind=NoticeKind.ADVERSE_ACTION, channel=NoticeChannel.EMAIL, attempts=1
    )
    assert event.subject_id == subject and event.purpose is Purpose.COMMUNICATION
    async with rt.engine.connect() as conn:
        body_kept = await conn.scalar(
            select(customer_notices.c.body_sealed).where(customer_notices.c.notice_id == notice_id)
        )
    assert body_kept is None  # delivered: the copy of the body goes

    # a second round, even an hour later, sends nothing more
    await service.deliver_due_notices(rt, relay, _now() + timedelta(hours=1))
    assert len(sink.mail_to(email)) == 1
    assert len(await _outcomes(rt, notice_id)) == 1


@pytest.mark.parametrize("contacts", ["phone only", "none at all"])
async def test_a_subject_without_an_email_fails_once_and_is_not_retried(
    rt: ServiceRuntime, relay: MailSender, contacts: str
) -> None:
    if contacts == "phone only":
        subject = await _customer(rt, REDACTED)
    else:
        subject = str(uuid.uuid4())  # incident never saw their sign-up
    notice_id = await _request(rt, subject, "Your payment of this month is due.")

    await service.deliver_due_notices(rt, relay, _now())

    notice = await _state(rt, notice_id)
    assert notice.state is NoticeState.FAILED and notice.reason == "no e-mail on file"
    assert notice.next_attempt_at is None
    [event] = await _outcomes(rt, notice_id)
    assert event.payload == CustomerNoticeDeliveryFailed(
        notice_id=notice_id, reason="no e-mail on file", attempts=0, will_retry=False
    )
    assert event.subject_id == subject
    await service.deliver_due_notices(rt, relay, _now() + timedelta(days=1))
    assert len(await _outcomes(rt, notice_id)) == 1


async def test_a_relay_outage_fails_the_attempt_and_a_later_round_delivers_it(
    rt: ServiceRuntime, relay: MailSender, sink: LocalStack
) -> None:
    email = f"retry-{uuid.uuid4().hex[:8]}@example.com"
    subject = await _customer(rt, email)
    notice_id = await _request(rt, subject, "Your repayment was received late.")
    down = MailSender(f"smtp://127.0.0.1:{free_port()}", rt.settings.mail_from, timeout=2)
    now = _now()

    await service.deliver_due_notices(rt, down, now)

    notice = await _state(rt, notice_id)
    assert notice.state is NoticeState.FAILED and notice.attempts == 1
    assert notice.next_attempt_at == now + timedelta(seconds=30)
    [failed] = await _outcomes(rt, notice_id)
    assert isinstance(failed.payload, CustomerNoticeDeliveryFailed)
    assert failed.payload.will_retry and failed.payload.attempts == 1
    assert email not in failed.payload.reason
    assert sink.mail_to(email) == []

    # not due before its back-off, even with the relay back
    await service.deliver_due_notices(rt, relay, now + timedelta(seconds=10))
    assert (await _state(rt, notice_id)).state is NoticeState.FAILED
    await service.deliver_due_notices(rt, relay, now + timedelta(seconds=31))

    assert [m.body.strip() for m in sink.wait_for_mail(email, 1)] == [
        "Your repayment was received late."
    ]
    notice = await _state(rt, notice_id)
    assert notice.state is NoticeState.COMPLETED and notice.attempts == 2
    _, delivered = await _outcomes(rt, notice_id)
    assert isinstance(delivered.payload, CustomerNoticeDelivered)
    assert delivered.payload.attempts == 2


async def test_an_erased_subject_is_sent_nothing(
    rt: ServiceRuntime, relay: MailSender, sink: LocalStack, provisioned: LocalStack
) -> None:
    email = f"erased-{uuid.uuid4().hex[:8]}@example.com"
    subject = await _customer(rt, email)
    # a request that arrives after the erasure opens as redacted
    late = await _request(rt, subject, REDACTED)
    # one planned before the erasure opens as redacted when its turn comes
    planned = await _request(rt, subject, "Your offer is ready.")
    erasure = ServiceRuntime(service_definition, provisioned.settings("identity"))
    try:  # the erasure path runs as identity: no other service may destroy a key
        assert await erasure.keys.destroy(subject)
    finally:
        await erasure.close()

    await service.deliver_due_notices(rt, relay, _now())

    for notice_id in (late, planned):
        notice = await _state(rt, notice_id)
        assert notice.state is NoticeState.NOT_NEEDED
        assert notice.reason == domain.SUBJECT_ERASED
        assert await _outcomes(rt, notice_id) == []
    assert sink.mail_to(email) == []


async def test_an_attempt_interrupted_by_a_crash_is_made_again_after_its_lease(
    rt: ServiceRuntime, relay: MailSender, sink: LocalStack
) -> None:
    email = f"crash-{uuid.uuid4().hex[:8]}@example.com"
    subject = await _customer(rt, email)
    notice_id = await _request(rt, subject, "Your payment is due on the 1st.")
    now = _now()
    # a sender took it and died before recording the outcome: `ongoing` is committed first
    async with rt.engine.begin() as conn:
        [(notice, _)] = [
            (n, b) for n, b in await store.claim_due(conn, now, 1000) if n.notice_id == notice_id
        ]
        step = domain.begin_attempt(
            notice, now, restriction=None, body_erased=False, has_email=True
        )
        assert await store.save(conn, step.notice, notice, now)

    await service.deliver_due_notices(rt, relay, now + timedelta(minutes=1))
    assert sink.mail_to(email) == []  # its lease still runs: not sent blindly again
    assert (await _state(rt, notice_id)).state is NoticeState.ONGOING

    await service.deliver_due_notices(rt, relay, now + domain.SEND_LEASE)
    assert len(sink.wait_for_mail(email, 1)) == 1
    notice = await _state(rt, notice_id)
    assert notice.state is NoticeState.COMPLETED and notice.attempts == 2
