"""Breach notices against a real database and the stack's SMTP sink: each affected subject
is sent one notice with the five parts, in their language, through the one notification
path; a subject no channel reaches lands in the public notice (published at a public route,
with no personal data); planning twice plans once; and a sender killed between the relay's
acceptance and the commit resends the same message (the same Message-ID), never a second
one, and a run killed before its commit sends nothing twice."""

from __future__ import annotations

import json
import mailbox
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from expensura_events.catalog.identity import AccountOpened
from expensura_events.catalog.incident_breach import BreachNoticesPlanned, PublicNoticePublished
from expensura_events.catalog.incident_notices import NoticeChannel
from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, new_event_id, utcnow
from expensura_events.notifications import MailSender
from expensura_events.runtime import ServiceRuntime
from expensura_events.store import EventStore
from expensura_events.testing.tokens import IssuedTokens
from expensura_events.vocabulary import ActorKind, CollectionChannel, Purpose
from expensura_events.web.app import create_app
from expensura_incident.app import service_definition
from expensura_incident.breach import domain as breach
from expensura_incident.breach import service as breach_service
from expensura_incident.breach.domain import BreachContent, BreachParts
from expensura_incident.breach.service import BreachSubject
from expensura_incident.contacts.projection import NotificationContacts
from expensura_incident.notices import domain, service
from expensura_incident.notices.domain import NoticeState
from expensura_incident.notices.providers import ChannelSender, EmailSender, Outgoing
from expensura_incident.response import service as response
from expensura_incident.response.domain import Source
from expensura_incident.tables import public_notices
from expensura_ops.testing.stack import SMTP_SINK, LocalStack

pytestmark = [pytest.mark.obligation("SEC-5"), pytest.mark.obligation("USE-10")]

EN = BreachParts(
    situation="On 1 December 2026 an attacker read part of our loan database.",
    impacts=("contact details", "loan balances"),
    measures="We closed the access, rotated every key and called in forensic experts.",
    advice="Watch your accounts and be wary of messages asking for your password.",
    remedies="Call 1-800-555-0100. You can get a free credit report and a security freeze.",
)
ES = BreachParts(
    situation="El 1 de diciembre de 2026 un atacante leyó parte de nuestra base de préstamos.",
    impacts=("datos de contacto", "saldos de préstamos"),
    measures="Cerramos el acceso, rotamos todas las claves y llamamos a peritos forenses.",
    advice="Vigile sus cuentas y desconfíe de mensajes que pidan su contraseña.",
    remedies="Llame al 1-800-555-0100. Puede obtener un informe de crédito gratuito y congelarlo.",
)
CONTENT = BreachContent.of({"en": EN, "es": ES})
OFFICER = Actor(kind=ActorKind.STAFF, id="staff-officer", role="security-officer")


@pytest.fixture(scope="module")
async def provisioned(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    stack = LocalStack(pg_admin_url, kafka_bootstrap, tmp_path_factory.mktemp("breach"))
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
def relay(sink: LocalStack, rt: ServiceRuntime) -> dict[NoticeChannel, ChannelSender]:
    url = f"smtp://127.0.0.1:{sink.ports[SMTP_SINK]}"
    return {NoticeChannel.EMAIL: EmailSender(MailSender(url, rt.settings.mail_from, timeout=2))}


def _event(subject: str, payload: DomainEvent) -> EventEnvelope:
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source="identity",
        stream_id=f"identity-{subject}",
        stream_version=0,
        subject_id=subject,
        actor=Actor.system("tests"),
        purpose=Purpose.COMMUNICATION,
        correlation_id=new_event_id(),
        payload=payload,
    )


async def _customer(rt: ServiceRuntime, email: str) -> str:
    subject = str(uuid.uuid4())
    contacts = NotificationContacts()
    contacts.bind(rt)
    opened = AccountOpened.model_construct(
        account_id=uuid.UUID(subject),
        email=email,
        phone=None,
        channel=CollectionChannel.PROVIDED_BY_USER,
    )
    async with rt.engine.begin() as conn:
        await contacts.apply(conn, _event(subject, opened))
    return subject


def _messages(maildir: Path, to: str) -> list[EmailMessage]:
    """Every message the sink received for `to`, with its headers."""
    if not (maildir / "new").is_dir():
        return []
    box = mailbox.Maildir(maildir, create=False)
    out = []
    for key in box.iterkeys():
        msg = message_from_bytes(box.get_bytes(key), policy=default)
        assert isinstance(msg, EmailMessage)
        if str(msg["To"]).lower() == to.lower():
            out.append(msg)
    return out


async def _incident_events(rt: ServiceRuntime, incident_id: uuid.UUID) -> list[EventEnvelope]:
    types = [BreachNoticesPlanned.event_type, PublicNoticePublished.event_type]
    async with rt.engine.connect() as conn:
        records = await EventStore.read_records(conn, 0, 100_000, types)
    events = [await rt.mapper.from_record(r.record) for r in records]
    return [e for e in events if getattr(e.payload, "incident_id", None) == incident_id]


async def _deliver(rt: ServiceRuntime, relay: dict[NoticeChannel, ChannelSender]) -> None:
    await service.deliver_due_notices(rt, relay, utcnow(), limit=1000)


async def test_each_subject_is_mailed_the_five_parts_in_their_language_once(
    rt: ServiceRuntime, relay: dict[NoticeChannel, ChannelSender], sink: LocalStack
) -> None:
    incident = uuid.uuid4()
    en_mail = f"breach-en-{uuid.uuid4().hex[:8]}@example.com"
    es_mail = f"breach-es-{uuid.uuid4().hex[:8]}@example.com"
    en_subject, es_subject = await _customer(rt, en_mail), await _customer(rt, es_mail)
    subjects = [BreachSubject(en_subject, "en-US"), BreachSubject(es_subject, "es")]

    run = await breach_service.send_breach_notices(rt, incident, subjects, CONTENT, actor=OFFICER)
    assert (run.planned, run.already, run.unreachable) == (2, 0, 0)
    assert not run.public_notice.needed
    await _deliver(rt, relay)

    [english] = sink.wait_for_mail(en_mail, 1)
    assert english.subject == breach.HEADINGS["en"]["title"]
    for text in (EN.situation, *EN.impacts, EN.measures, EN.advice, EN.remedies):
        assert text in english.body
    [spanish] = sink.wait_for_mail(es_mail, 1)
    assert spanish.subject == breach.HEADINGS["es"]["title"]
    for text in (ES.situation, *ES.impacts, ES.measures, ES.advice, ES.remedies):
        assert text in spanish.body
    for key in ("situation", "impacts", "measures", "advice", "remedies"):
        assert breach.HEADINGS["es"][key] in spanish.body
    [msg] = _messages(sink.maildir, es_mail)
    notice_id = breach.breach_notice_id(incident, es_subject)
    assert msg["Message-ID"] == f"<notice-{notice_id}@expensura.invalid>"

    # planned again (the officer re-submits, or a run is repeated): nothing new is sent
    again = await breach_service.send_breach_notices(rt, incident, subjects, CONTENT, actor=OFFICER)
    assert (again.planned, again.already) == (0, 2)
    await _deliver(rt, relay)
    assert len(sink.mail_to(en_mail)) == 1 and len(sink.mail_to(es_mail)) == 1
    assert await breach_service.breach_notice_counts(rt, incident) == {"completed": 2}

    events = await _incident_events(rt, incident)
    assert [e.payload.planned for e in events] == [2, 0]  # type: ignore[union-attr]
    for e in events:
        assert e.subject_id is None
        text = json.dumps(e.payload.model_dump(mode="json"))
        for secret in (en_mail, es_mail, en_subject, es_subject):
            assert secret not in text


async def test_a_subject_no_channel_reaches_lands_in_the_public_notice(
    rt: ServiceRuntime, relay: dict[NoticeChannel, ChannelSender], sink: LocalStack
) -> None:
    incident = uuid.uuid4()
    email = f"breach-ok-{uuid.uuid4().hex[:8]}@example.com"
    reached = await _customer(rt, email)
    nowhere = str(uuid.uuid4())  # incident holds no address for them

    run = await breach_service.send_breach_notices(
        rt, incident, [BreachSubject(reached), BreachSubject(nowhere)], CONTENT, actor=OFFICER
    )

    assert (run.planned, run.unreachable) == (2, 1)
    assert run.public_notice.needed and run.public_notice.reasons == (breach.NO_WORKING_CHANNEL,)
    async with rt.engine.connect() as conn:
        [row] = (
            await conn.execute(
                select(public_notices).where(public_notices.c.incident_id == incident)
            )
        ).all()
    assert row.unreachable == 1 and row.subjects == 2 and EN.situation in row.body
    unreached = await service.find(rt, breach.breach_notice_id(incident, nowhere))
    assert unreached is not None and unreached.state is NoticeState.FAILED
    assert unreached.reason == domain.NO_CHANNEL and unreached.next_attempt_at is None
    await _deliver(rt, relay)
    assert len(sink.wait_for_mail(email, 1)) == 1
    assert await breach_service.breach_notice_counts(rt, incident) == {
        "completed": 1,
        "failed": 1,
    }
    [planned, published] = await _incident_events(rt, incident)
    assert isinstance(published.payload, PublicNoticePublished)
    assert published.payload.reasons == [breach.NO_WORKING_CHANNEL]
    assert "1798.82(j)(3)" in published.payload.source
    for secret in (email, reached, nowhere):
        assert secret not in json.dumps(published.payload.model_dump(mode="json"))
        assert secret not in json.dumps(planned.payload.model_dump(mode="json"))
    # a second run publishes nothing more
    await breach_service.send_breach_notices(
        rt, incident, [BreachSubject(nowhere)], CONTENT, actor=OFFICER
    )
    assert len(await _incident_events(rt, incident)) == 3  # one more run, no second notice


class Killed(BaseException):
    """The process dying: nothing after it runs (not an Exception the sender catches)."""


class DiesAfterTheRelayAccepts:
    """The e-mail sender of a process killed right after the relay accepted the message,
    before the outcome is committed."""

    def __init__(self, inner: ChannelSender) -> None:
        self.inner = inner

    async def send(self, message: Outgoing) -> str | None:
        await self.inner.send(message)
        raise Killed


async def test_a_sender_killed_after_the_relay_accepted_resends_the_same_message_only(
    rt: ServiceRuntime, relay: dict[NoticeChannel, ChannelSender], sink: LocalStack
) -> None:
    incident = uuid.uuid4()
    email = f"breach-crash-{uuid.uuid4().hex[:8]}@example.com"
    subject = await _customer(rt, email)
    await breach_service.send_breach_notices(
        rt, incident, [BreachSubject(subject)], CONTENT, actor=OFFICER
    )
    notice_id = breach.breach_notice_id(incident, subject)
    now = utcnow()
    dying = {NoticeChannel.EMAIL: DiesAfterTheRelayAccepts(relay[NoticeChannel.EMAIL])}

    with pytest.raises(Killed):
        await service.deliver_due_notices(rt, dying, now, limit=1000)

    assert len(sink.wait_for_mail(email, 1)) == 1
    crashed = await service.find(rt, notice_id)
    assert crashed is not None and crashed.state is NoticeState.ONGOING  # committed first
    # restarted: while the lease runs, the notice is not sent again
    await service.deliver_due_notices(rt, relay, now + domain.SEND_LEASE / 2, limit=1000)
    assert len(_messages(sink.maildir, email)) == 1
    # after the lease the attempt counts as interrupted and is made again: the same message
    await service.deliver_due_notices(rt, relay, now + domain.SEND_LEASE, limit=1000)
    sink.wait_for_mail(email, 2)
    for _ in range(3):
        await service.deliver_due_notices(rt, relay, now + domain.SEND_LEASE * 4, limit=1000)
    ids = Counter(m["Message-ID"] for m in _messages(sink.maildir, email))
    # the one window SMTP leaves (accepted, not yet recorded) is crossed by resending the
    # same message: one Message-ID, the idempotency key a receiver deduplicates on
    assert ids == {f"<notice-{notice_id}@expensura.invalid>": 2}
    done = await service.find(rt, notice_id)
    assert done is not None and done.state is NoticeState.COMPLETED and done.attempts == 2


async def test_a_run_killed_before_it_commits_plans_nothing_and_a_rerun_sends_once(
    rt: ServiceRuntime,
    relay: dict[NoticeChannel, ChannelSender],
    sink: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    incident = uuid.uuid4()
    emails = [f"breach-rerun-{i}-{uuid.uuid4().hex[:6]}@example.com" for i in range(3)]
    subjects = [BreachSubject(await _customer(rt, e)) for e in emails]
    real_link = breach_service.store.link
    calls = 0

    async def dies_on_the_third(*args: Any, **kwargs: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Killed
        return await real_link(*args, **kwargs)

    monkeypatch.setattr(breach_service.store, "link", dies_on_the_third)
    with pytest.raises(Killed):
        await breach_service.send_breach_notices(rt, incident, subjects, CONTENT, actor=OFFICER)
    monkeypatch.setattr(breach_service.store, "link", real_link)
    assert await breach_service.breach_notice_counts(rt, incident) == {}

    run = await breach_service.send_breach_notices(rt, incident, subjects, CONTENT, actor=OFFICER)
    assert run.planned == 3
    await _deliver(rt, relay)
    await _deliver(rt, relay)
    for email in emails:
        sink.wait_for_mail(email, 1)
        assert len(_messages(sink.maildir, email)) == 1


# --- HTTP -----------------------------------------------------------------------------


@pytest.fixture
async def http(
    rt: ServiceRuntime, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, IssuedTokens]]:
    verifier = IssuedTokens()
    monkeypatch.setattr(rt, "token_verifier", verifier)
    app = create_app(service_definition)
    app.state.runtime = rt
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://incident"
    ) as client:
        yield client, verifier


async def _reported(rt: ServiceRuntime) -> uuid.UUID:
    """An incident reported through the response workflow (the routes act for known ones)."""
    view = await response.report_incident(
        rt,
        summary="Customer records reached an unknown recipient",
        source=Source.STAFF,
        staff_id=OFFICER.id,
        roles=frozenset({"security-officer"}),
    )
    return view.incident_id


def _parts(p: BreachParts) -> dict[str, Any]:
    return {
        "situation": p.situation,
        "impacts": list(p.impacts),
        "measures": p.measures,
        "advice": p.advice,
        "remedies": p.remedies,
    }


async def test_officers_plan_breach_notices_and_anyone_reads_the_public_notice(
    rt: ServiceRuntime,
    http: tuple[httpx.AsyncClient, IssuedTokens],
    relay: dict[NoticeChannel, ChannelSender],
    sink: LocalStack,
) -> None:
    client, verifier = http
    incident = await _reported(rt)
    email = f"breach-http-{uuid.uuid4().hex[:8]}@example.com"
    reached, nowhere = await _customer(rt, email), str(uuid.uuid4())
    body = {
        "content": _parts(EN),
        "translations": {"es": _parts(ES)},
        "subjects": [{"subject_id": reached, "language": "es"}, {"subject_id": nowhere}],
    }
    path = f"/v1/incidents/{incident}/breach-notices"

    for refused in (
        {},
        verifier.staff("security-officer", mfa=False),
        verifier.staff("customer-service"),
    ):
        assert (await client.post(path, json=body, headers=refused)).status_code in (401, 403)
        assert (await client.get(path, headers=refused)).status_code in (401, 403)
    incomplete = {**body, "translations": {"es": {**_parts(ES), "advice": " "}}}
    officer = verifier.staff("privacy-officer")
    answer = await client.post(path, json=incomplete, headers=officer)
    assert answer.status_code == 422 and "advice" in answer.text

    answer = await client.post(path, json=body, headers=verifier.staff("security-officer"))
    assert answer.status_code == 202, answer.text
    assert answer.json()["planned"] == 2 and answer.json()["unreachable"] == 1
    await _deliver(rt, relay)
    [mail] = sink.wait_for_mail(email, 1)
    assert ES.situation in mail.body
    counts = (await client.get(path, headers=officer)).json()
    assert counts["total"] == 2 and counts["states"] == {"completed": 1, "failed": 1}

    public = await client.get("/v1/public-notices")  # no authentication
    assert public.status_code == 200
    [notice] = [n for n in public.json()["notices"] if n["incident_id"] == str(incident)]
    assert EN.remedies in notice["body"] and notice["reasons"] == [breach.NO_WORKING_CHANNEL]
    for secret in (email, reached, nowhere):
        assert secret not in public.text


@pytest.mark.obligation("SEC-4")
async def test_breach_notices_for_an_unknown_incident_are_404_and_plan_nothing(
    rt: ServiceRuntime, http: tuple[httpx.AsyncClient, IssuedTokens]
) -> None:
    client, verifier = http
    subject = str(uuid.uuid4())
    body = {"content": _parts(EN), "subjects": [{"subject_id": subject}]}
    path = f"/v1/incidents/{uuid.uuid4()}/breach-notices"
    officer = verifier.staff("security-officer")
    async with rt.engine.connect() as conn:
        before = await EventStore.read_records(conn, 0, 1_000_000)
    planned = await client.post(path, json=body, headers=officer)
    states = await client.get(path, headers=officer)
    for answer in (planned, states):
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == 404 and "incident" in answer.json()["detail"]
    async with rt.engine.connect() as conn:
        after = await EventStore.read_records(conn, 0, 1_000_000)
    assert len(after) == len(before)  # nothing planned, nothing recorded
    assert subject not in planned.text


SENDER_PROCESS = """
import asyncio, sys
from expensura_events.envelope import utcnow
from expensura_events.notifications import MailSender
from expensura_events.runtime import ServiceRuntime
from expensura_events.catalog.incident_notices import NoticeChannel
from expensura_events.testing.tokens import IssuedTokens
from expensura_incident.app import service_definition
from expensura_incident.notices import service
from expensura_incident.notices.providers import EmailSender
from expensura_incident.settings import IncidentSettings

smtp_url, victim = sys.argv[1], sys.argv[2]

class HangsAfterTheRelayAccepts:
    def __init__(self, inner):
        self.inner = inner

    async def send(self, message):
        ref = await self.inner.send(message)
        if message.to == victim:
            await asyncio.sleep(3600)  # killed here: accepted, not recorded
        return ref

async def main():
    settings = IncidentSettings(workers=False)
    rt = ServiceRuntime(service_definition, settings)
    email = EmailSender(MailSender(smtp_url, settings.mail_from, timeout=2))
    senders = {NoticeChannel.EMAIL: HangsAfterTheRelayAccepts(email)}
    await service.deliver_due_notices(rt, senders, utcnow(), limit=1000)

asyncio.run(main())
"""


async def test_a_sender_process_killed_after_the_relay_accepted_never_sends_another_message(
    rt: ServiceRuntime, relay: dict[NoticeChannel, ChannelSender], sink: LocalStack
) -> None:
    incident = uuid.uuid4()
    email = f"breach-kill-{uuid.uuid4().hex[:8]}@example.com"
    subject = await _customer(rt, email)
    await breach_service.send_breach_notices(
        rt, incident, [BreachSubject(subject, "es")], CONTENT, actor=OFFICER
    )
    notice_id = breach.breach_notice_id(incident, subject)
    smtp_url = f"smtp://127.0.0.1:{sink.ports[SMTP_SINK]}"
    sender = subprocess.Popen(
        [sys.executable, "-c", SENDER_PROCESS, smtp_url, email],
        env=sink.service_env("incident", EXPENSURA_SMTP_URL=smtp_url),
    )
    try:
        sink.wait_for_mail(email, 1, timeout=30)
        assert sender.poll() is None  # it hangs between the relay's answer and the commit
    finally:
        sender.send_signal(signal.SIGKILL)
        sender.wait(timeout=10)
    assert sender.returncode == -signal.SIGKILL
    killed = await service.find(rt, notice_id)
    assert killed is not None and killed.state is NoticeState.ONGOING

    now = utcnow()
    await service.deliver_due_notices(rt, relay, now, limit=1000)  # restarted: lease runs
    assert len(_messages(sink.maildir, email)) == 1
    for _ in range(3):
        await service.deliver_due_notices(rt, relay, now + domain.SEND_LEASE * 2, limit=1000)
    messages = _messages(sink.maildir, email)
    ids = Counter(m["Message-ID"] for m in messages)
    # resent once after the lease, as the same message (one Message-ID): never a second one
    assert ids == {f"<notice-{notice_id}@expensura.invalid>": 2}
    for msg in messages:
        body = msg.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        for part in (ES.situation, ES.measures, ES.advice, ES.remedies, *ES.impacts):
            assert part in text
    done = await service.find(rt, notice_id)
    assert done is not None and done.state is NoticeState.COMPLETED
