"""Customer notices against a real database, a real SMTP relay (the stack's sink) and the
sandbox push, SMS and letter providers: a requested notice reaches the customer once, with
its title and body, on the first of their channels that takes it; the outcome is recorded
as a state, an attempt row per channel and an event; an outage is retried after its
back-off; a refused channel falls back to the next; every channel failing fails the notice;
an erased subject is sent nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from expensura_events.catalog.identity import AccountOpened
from expensura_events.catalog.identity_notifications import NotificationPreferencesSet
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
from expensura_incident.notices.providers import (
    ChannelSender,
    EmailSender,
    LetterSender,
    PushSender,
    SmsSender,
)
from expensura_incident.tables import customer_notice_attempts, customer_notices
from expensura_ops.sandboxes import MESSAGING_ENV
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


@pytest.fixture(scope="module")
def messaging(provisioned: LocalStack) -> Iterator[str]:
    """The sandbox push, SMS and letter providers' URL."""
    provisioned.start_messaging()
    yield provisioned.messaging_url


Senders = dict[NoticeChannel, ChannelSender]


def _senders(smtp_url: str, messaging: str, mail_from: str) -> Senders:
    return {
        NoticeChannel.EMAIL: EmailSender(MailSender(smtp_url, mail_from, timeout=2)),
        NoticeChannel.PUSH: PushSender(
            messaging, "expensura", MESSAGING_ENV["EXPENSURA_PUSH_KEY"], timeout=5
        ),
        NoticeChannel.SMS: SmsSender(
            messaging,
            MESSAGING_ENV["EXPENSURA_SMS_ACCOUNT_SID"],
            MESSAGING_ENV["EXPENSURA_SMS_AUTH_TOKEN"],
            "+15005550006",
            timeout=5,
        ),
        NoticeChannel.LETTER: LetterSender(
            messaging,
            MESSAGING_ENV["EXPENSURA_LETTER_API_KEY"],
            "Expensura\n100 Market Street\nSan Francisco, CA 94105",
            timeout=5,
        ),
    }


@pytest.fixture
def relay(sink: LocalStack, messaging: str, rt: ServiceRuntime) -> Senders:
    """Every channel's sender: e-mail to the stack's SMTP sink, the others to the sandbox."""
    return _senders(f"smtp://127.0.0.1:{sink.ports[SMTP_SINK]}", messaging, rt.settings.mail_from)


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


async def _customer(rt: ServiceRuntime, email: str, phone: str | None = "+14155550100") -> str:
    """A subject incident knows from identity's sign-up; `REDACTED`: the sign-up's address
    no longer opens, so the contact copy holds only the phone."""
    subject = str(uuid.uuid4())
    contacts = NotificationContacts()
    contacts.bind(rt)
    opened = AccountOpened.model_construct(
        account_id=uuid.UUID(subject),
        email=email,
        phone=phone,
        channel=CollectionChannel.PROVIDED_BY_USER,
    )
    async with rt.engine.begin() as conn:
        await contacts.apply(conn, _event("identity", subject, opened))
    return subject


async def _prefer(
    rt: ServiceRuntime,
    subject: str,
    channels: list[NoticeChannel],
    *,
    push_token: str | None = None,
    mailing_address: str | None = None,
) -> None:
    """The customer's channel choice, as identity records it and incident's contacts
    follow it."""
    chosen = NotificationPreferencesSet(
        channels=channels,
        push_token=push_token,
        mailing_address=mailing_address,
        channel=CollectionChannel.PROVIDED_BY_USER,
    )
    contacts = NotificationContacts()
    contacts.bind(rt)
    async with rt.engine.begin() as conn:
        await contacts.apply(conn, _event("identity", subject, chosen))


async def _attempts(rt: ServiceRuntime, notice_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """Each attempt's row: (number, channel, state, reason)."""
    async with rt.engine.connect() as conn:
        return [
            (a.number, a.channel.value, a.state.value, a.reason)
            for a in await store.attempts_of(conn, notice_id)
        ]


def _delivered(messaging: str, channel: str, to: str) -> list[dict[str, Any]]:
    """What the sandbox provider of `channel` accepted for `to`."""
    answer = httpx.get(
        f"{messaging}/sandbox/deliveries", params={"channel": channel, "to": to}, timeout=5
    )
    found: list[dict[str, Any]] = answer.json()["deliveries"]
    return found


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
    rt: ServiceRuntime, relay: Senders, sink: LocalStack
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


async def test_a_subject_without_an_email_is_sent_the_notice_by_sms(
    rt: ServiceRuntime, relay: Senders, messaging: str
) -> None:
    phone = f"+1415{uuid.uuid4().int % 10**6:06d}"
    subject = await _customer(rt, REDACTED, phone)  # the e-mail no longer opens
    notice_id = await _request(rt, subject, "Your payment of this month is due.")

    await service.deliver_due_notices(rt, relay, _now())

    [sms] = _delivered(messaging, "sms", phone)
    assert sms["body"] == "Your loan application: Your payment of this month is due."
    notice = await _state(rt, notice_id)
    assert notice.state is NoticeState.COMPLETED and notice.channel is NoticeChannel.SMS
    assert await _attempts(rt, notice_id) == [(1, "sms", "completed", None)]


async def test_a_subject_no_channel_can_reach_fails_once_and_is_not_retried(
    rt: ServiceRuntime, relay: Senders
) -> None:
    subject = str(uuid.uuid4())  # incident never saw their sign-up
    notice_id = await _request(rt, subject, "Your payment of this month is due.")

    await service.deliver_due_notices(rt, relay, _now())

    notice = await _state(rt, notice_id)
    assert notice.state is NoticeState.FAILED and notice.reason == domain.NO_CHANNEL
    assert notice.next_attempt_at is None
    [event] = await _outcomes(rt, notice_id)
    assert event.payload == CustomerNoticeDeliveryFailed(
        notice_id=notice_id, reason=domain.NO_CHANNEL, attempts=0, will_retry=False
    )
    assert event.subject_id == subject
    await service.deliver_due_notices(rt, relay, _now() + timedelta(days=1))
    assert len(await _outcomes(rt, notice_id)) == 1


async def test_a_relay_outage_fails_the_attempt_and_a_later_round_delivers_it(
    rt: ServiceRuntime, relay: Senders, sink: LocalStack
) -> None:
    email = f"retry-{uuid.uuid4().hex[:8]}@example.com"
    subject = await _customer(rt, email)
    notice_id = await _request(rt, subject, "Your repayment was received late.")
    # the relay is down (nothing listens); the other channels stay as they are
    down = relay | {
        NoticeChannel.EMAIL: EmailSender(
            MailSender(f"smtp://127.0.0.1:{free_port()}", rt.settings.mail_from, timeout=2)
        )
    }
    now = _now()

    await service.deliver_due_notices(rt, down, now)

    notice = await _state(rt, notice_id)
    assert notice.state is NoticeState.FAILED and notice.attempts == 1
    assert notice.next_attempt_at == now + timedelta(seconds=30)
    [failed] = await _outcomes(rt, notice_id)
    assert isinstance(failed.payload, CustomerNoticeDeliveryFailed)
    assert failed.payload.will_retry and failed.payload.attempts == 1
    assert failed.payload.channel is failed.payload.next_channel is NoticeChannel.EMAIL
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
    rt: ServiceRuntime, relay: Senders, sink: LocalStack, provisioned: LocalStack
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
    rt: ServiceRuntime, relay: Senders, sink: LocalStack
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
            notice,
            now,
            restriction=None,
            body_erased=False,
            reach=domain.Reach.of(None, {"email": email}),
        )
        assert await store.save(conn, step.notice, notice, now)

    await service.deliver_due_notices(rt, relay, now + timedelta(minutes=1))
    assert sink.mail_to(email) == []  # its lease still runs: not sent blindly again
    assert (await _state(rt, notice_id)).state is NoticeState.ONGOING

    await service.deliver_due_notices(rt, relay, now + domain.SEND_LEASE)
    assert len(sink.wait_for_mail(email, 1)) == 1
    notice = await _state(rt, notice_id)
    assert notice.state is NoticeState.COMPLETED and notice.attempts == 2


# --- channels: fall-back, retries on a channel, every channel failing --------------------


def _payloads(events: list[EventEnvelope]) -> str:
    return json.dumps([e.payload.model_dump(mode="json") for e in events])


async def test_a_refused_email_falls_back_to_push(
    rt: ServiceRuntime, relay: Senders, sink: LocalStack, messaging: str
) -> None:
    email = f"undeliverable-{uuid.uuid4().hex[:8]}@example.com"  # the sink refuses it (550)
    token = f"device-{uuid.uuid4().hex}"
    subject = await _customer(rt, email)
    await _prefer(rt, subject, [NoticeChannel.EMAIL, NoticeChannel.PUSH], push_token=token)
    notice_id = await _request(rt, subject, "We could not approve your application.")
    now = _now()

    await service.deliver_due_notices(rt, relay, now)

    notice = await _state(rt, notice_id)
    assert notice.state is NoticeState.FAILED and notice.channel is NoticeChannel.PUSH
    assert notice.next_attempt_at == now  # the next channel is due at once
    await service.deliver_due_notices(rt, relay, now)

    [push] = _delivered(messaging, "push", token)
    assert push["title"] == "Your loan application"
    assert push["body"] == "We could not approve your application."
    assert push["data"]["notice_id"] == str(notice_id)
    assert sink.mail_to(email) == []
    notice = await _state(rt, notice_id)
    assert notice.state is NoticeState.COMPLETED and notice.exhausted == (NoticeChannel.EMAIL,)
    assert await _attempts(rt, notice_id) == [
        (1, "email", "failed", "mail undelivered (adverse-action: SMTPRecipientsRefused)"),
        (2, "push", "completed", None),
    ]
    failed, delivered = await _outcomes(rt, notice_id)
    assert failed.payload == CustomerNoticeDeliveryFailed(
        notice_id=notice_id,
        reason="mail undelivered (adverse-action: SMTPRecipientsRefused)",
        attempts=1,
        will_retry=True,
        channel=NoticeChannel.EMAIL,
        next_channel=NoticeChannel.PUSH,
    )
    assert delivered.payload == CustomerNoticeDelivered(
        notice_id=notice_id, kind=NoticeKind.ADVERSE_ACTION, channel=NoticeChannel.PUSH, attempts=2
    )
    # nothing of the address or the token in the events or the attempts' rows
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(customer_notice_attempts).where(
                    customer_notice_attempts.c.notice_id == notice_id
                )
            )
        ).all()
    for text in (
        _payloads([failed, delivered]),
        json.dumps([r._asdict() for r in rows], default=str),
    ):
        assert email not in text and token not in text


async def test_an_sms_that_fails_once_is_delivered_on_retry_after_its_backoff(
    rt: ServiceRuntime, relay: Senders, messaging: str
) -> None:
    phone = f"+1415{uuid.uuid4().int % 1000:03d}0008"  # the sandbox fails it the first time
    subject = await _customer(rt, f"sms-{uuid.uuid4().hex[:8]}@example.com", phone)
    await _prefer(rt, subject, [NoticeChannel.SMS])  # SMS alone: the e-mail is not used
    notice_id = await _request(rt, subject, "Your payment of $120.00 is due on the 1st.")
    now = _now()

    await service.deliver_due_notices(rt, relay, now)

    notice = await _state(rt, notice_id)
    assert notice.state is NoticeState.FAILED and notice.channel is NoticeChannel.SMS
    sms_policy = domain.CHANNEL_POLICIES[NoticeChannel.SMS]
    assert notice.next_attempt_at == now + sms_policy.first_backoff
    [failed] = await _outcomes(rt, notice_id)
    assert isinstance(failed.payload, CustomerNoticeDeliveryFailed)
    assert failed.payload.reason == "sms undelivered (503 20503)"
    assert failed.payload.next_channel is NoticeChannel.SMS
    assert phone not in _payloads([failed])

    await service.deliver_due_notices(rt, relay, now + timedelta(seconds=30))
    assert _delivered(messaging, "sms", phone) == []  # its back-off still runs
    await service.deliver_due_notices(rt, relay, now + sms_policy.first_backoff)

    [sms] = _delivered(messaging, "sms", phone)
    assert sms["body"] == "Your loan application: Your payment of $120.00 is due on the 1st."
    notice = await _state(rt, notice_id)
    assert notice.state is NoticeState.COMPLETED
    assert (notice.attempts, notice.channel_attempts) == (2, 2)
    assert [a[:3] for a in await _attempts(rt, notice_id)] == [
        (1, "sms", "failed"),
        (2, "sms", "completed"),
    ]


async def test_a_letter_carries_the_whole_notice_to_the_mailing_address(
    rt: ServiceRuntime, relay: Senders, messaging: str
) -> None:
    line1 = f"{uuid.uuid4().int % 9000 + 100} Elm Street"
    subject = await _customer(rt, f"letter-{uuid.uuid4().hex[:8]}@example.com")
    address = f"Ann Lee\n{line1}\nSpringfield, IL 62704"
    await _prefer(rt, subject, [NoticeChannel.LETTER], mailing_address=address)
    body = "Principal reasons: income insufficient <for amount requested>."
    notice_id = await _request(rt, subject, body)

    await service.deliver_due_notices(rt, relay, _now())

    [letter] = _delivered(messaging, "letter", line1)
    assert letter["address"]["address_city"] == "Springfield"
    assert "income insufficient &lt;for amount requested&gt;" in letter["body"]
    notice = await _state(rt, notice_id)
    assert notice.state is NoticeState.COMPLETED and notice.channel is NoticeChannel.LETTER


async def test_when_every_channel_fails_the_notice_fails(
    rt: ServiceRuntime, relay: Senders, sink: LocalStack, messaging: str
) -> None:
    email = f"undeliverable-{uuid.uuid4().hex[:8]}@example.com"
    phone = f"+1415{uuid.uuid4().int % 1000:03d}0009"  # not a mobile number
    token = f"unregistered-{uuid.uuid4().hex}"
    subject = await _customer(rt, email, phone)
    await _prefer(
        rt,
        subject,
        list(domain.DEFAULT_ORDER),
        push_token=token,
        mailing_address="Ann Lee\n1 UNDELIVERABLE Road\nSpringfield, IL 62704",
    )
    notice_id = await _request(rt, subject, "Your account is 30 days past due.")
    now = _now()

    for _ in range(4):  # each refusal is permanent: the next channel at once
        await service.deliver_due_notices(rt, relay, now)

    notice = await _state(rt, notice_id)
    assert notice.state is NoticeState.FAILED and notice.next_attempt_at is None
    assert notice.reason == domain.EVERY_CHANNEL_FAILED
    assert notice.exhausted == domain.DEFAULT_ORDER
    assert [a[:3] for a in await _attempts(rt, notice_id)] == [
        (1, "email", "failed"),
        (2, "push", "failed"),
        (3, "sms", "failed"),
        (4, "letter", "failed"),
    ]
    events = await _outcomes(rt, notice_id)
    assert [(e.payload.channel, e.payload.next_channel) for e in events] == [  # type: ignore[union-attr]
        (NoticeChannel.EMAIL, NoticeChannel.PUSH),
        (NoticeChannel.PUSH, NoticeChannel.SMS),
        (NoticeChannel.SMS, NoticeChannel.LETTER),
        (NoticeChannel.LETTER, None),
    ]
    last = events[-1].payload
    assert isinstance(last, CustomerNoticeDeliveryFailed) and not last.will_retry
    assert sink.mail_to(email) == []
    for secret in (email, phone, token, "UNDELIVERABLE Road"):
        assert secret not in _payloads(events)
    # a later round sends nothing more
    await service.deliver_due_notices(rt, relay, now + timedelta(days=1))
    assert len(await _outcomes(rt, notice_id)) == 4
