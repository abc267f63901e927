"""Breach notices in one step from a stored blast radius, against a real database and the
stack's SMTP sink: the officer names the computation, incident opens its sealed subject list
and notifies exactly its notifiable subjects (not those whose values were sealed under a safe
key, not those outside the scope), each in the language their notification preferences give
(English without one); the officer never sees the list. Another incident's computation is
unknown (404), and the request names its subjects one way only (422)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import httpx
import pytest

from expensura_events.auth import Principal
from expensura_events.catalog.identity import AccountOpened
from expensura_events.catalog.identity_notifications import NotificationPreferencesSet
from expensura_events.catalog.incident_breach import BreachNoticesPlanned
from expensura_events.catalog.incident_exposure import ScopeKind
from expensura_events.catalog.incident_notices import NoticeChannel
from expensura_events.catalog.sharing import DisclosureMade
from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, new_event_id, utcnow
from expensura_events.notifications import MailSender
from expensura_events.privacy.access import access_record
from expensura_events.projections import LocalLogFeed, rebuild
from expensura_events.runtime import ServiceDefinition, ServiceRuntime
from expensura_events.store import EventStore
from expensura_events.testing.tokens import IssuedTokens
from expensura_events.topology import service
from expensura_events.vocabulary import ActorKind, CollectionChannel, Purpose
from expensura_events.web.app import create_app
from expensura_incident.app import service_definition
from expensura_incident.breach import domain as breach
from expensura_incident.contacts.projection import NotificationContacts
from expensura_incident.exposure import service as blast
from expensura_incident.exposure.domain import INDEXED_TYPES, Scope
from expensura_incident.exposure.projection import ExposureIndex
from expensura_incident.notices import service as notices
from expensura_incident.notices.providers import ChannelSender, EmailSender
from expensura_incident.response import service as response
from expensura_incident.response.domain import Source
from expensura_ops.testing.stack import SMTP_SINK, LocalStack

pytestmark = [pytest.mark.obligation("SEC-5"), pytest.mark.obligation("USE-10")]

PARTS = {
    "situation": "A partner's credential leaked and was used to read customers' contacts.",
    "impacts": ["e-mail address", "phone number"],
    "measures": "We revoked the credential and reviewed every disclosure it made.",
    "advice": "Be wary of messages that ask for your password or one-time codes.",
    "remedies": "Call 1-800-555-0100; you can get a free credit report and a security freeze.",
}
SPANISH = {
    "situation": "Se filtró la credencial de un socio y se usó para leer contactos.",
    "impacts": ["correo electrónico", "teléfono"],
    "measures": "Revocamos la credencial y revisamos cada divulgación que hizo.",
    "advice": "Desconfíe de mensajes que pidan su contraseña o códigos de un solo uso.",
    "remedies": "Llame al 1-800-555-0100; puede pedir un informe de crédito gratuito.",
}


@pytest.fixture(scope="module")
async def provisioned(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    stack = LocalStack(pg_admin_url, kafka_bootstrap, tmp_path_factory.mktemp("from-radius"))
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


@pytest.fixture(scope="module")
async def runtimes(provisioned: LocalStack) -> AsyncIterator[dict[str, ServiceRuntime]]:
    """Incident, and identity and the gateway (as they append to their own logs)."""

    def as_(name: str) -> ServiceDefinition:
        spec = service(name)
        return dataclasses.replace(service_definition, spec=spec, projections=(), workers=())

    out = {"incident": ServiceRuntime(service_definition, provisioned.settings("incident"))}
    for name in ("identity", "sharing-gateway"):
        out[name] = ServiceRuntime(as_(name), provisioned.settings(name))
    try:
        yield out
    finally:
        for rt in out.values():
            await rt.close()


@pytest.fixture
async def http(
    runtimes: dict[str, ServiceRuntime], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, IssuedTokens]]:
    rt = runtimes["incident"]
    verifier = IssuedTokens()
    monkeypatch.setattr(rt, "token_verifier", verifier)
    app = create_app(service_definition)
    app.state.runtime = rt
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://incident") as client:
        yield client, verifier


def _officer(verifier: IssuedTokens, role: str = "security-officer") -> dict[str, str]:
    return verifier.issue(
        Principal(
            kind=ActorKind.STAFF,
            id=f"staff-{uuid.uuid4().hex[:6]}",
            roles=frozenset({role}),
            mfa=True,
        )
    )


def _identity_event(subject: str, payload: DomainEvent) -> EventEnvelope:
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


async def _customer(rt: ServiceRuntime, email: str, language: str | None) -> str:
    """A customer incident's contacts copy knows (as it follows identity's sign-up and the
    preferences event), with the language they chose, or none."""
    subject = str(uuid.uuid4())
    contacts = NotificationContacts()
    contacts.bind(rt)
    opened = AccountOpened.model_construct(
        account_id=uuid.UUID(subject),
        email=email,
        phone=None,
        channel=CollectionChannel.PROVIDED_BY_USER,
    )
    chosen = NotificationPreferencesSet(
        channels=[NoticeChannel.EMAIL],
        channel=CollectionChannel.PROVIDED_BY_USER,
        language=language,
    )
    async with rt.engine.begin() as conn:
        await contacts.apply(conn, _identity_event(subject, opened))
        await contacts.apply(conn, _identity_event(subject, chosen))
    return subject


async def _disclose(rt: ServiceRuntime, subject: str, partner: str, at: datetime) -> None:
    payload = DisclosureMade(
        disclosure_id=uuid.uuid4(),
        partner_id=partner,
        fields=["email", "phone"],
        decision_id=uuid.uuid4(),
        decided_at=at,
        basis={"ground": "consent"},
        agreement_id=uuid.uuid4(),
    )
    event = EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source=rt.name,
        stream_id=f"disclosure-{payload.disclosure_id}",
        stream_version=0,
        subject_id=subject,
        actor=Actor(kind=ActorKind.PARTNER, id=partner),
        purpose=Purpose.IDENTITY_VERIFICATION,
        correlation_id=new_event_id(),
        occurred_at=at,
        payload=payload,
    )
    async with rt.engine.begin() as conn:
        await rt.append(conn, [event])


async def _sealed_read(rt: ServiceRuntime, subject: str, reader: Actor, at: datetime) -> None:
    """A service that received the sealed box, not the value (sealed under a safe key)."""
    event = access_record(
        rt,
        subject_id=subject,
        actor=reader,
        purpose=Purpose.CUSTOMER_CARE,
        fields=["email_sealed"],
        categories=["pd:Contact"],
    ).model_copy(update={"occurred_at": at})
    async with rt.engine.begin() as conn:
        await rt.append(conn, [event])


async def _index(runtimes: dict[str, ServiceRuntime]) -> None:
    rt = runtimes["incident"]
    feeds = [
        LocalLogFeed(runtimes[n].engine, n, sorted(INDEXED_TYPES))
        for n in ("identity", "sharing-gateway")
    ]
    outcome = await rebuild(rt.engine, rt.mapper, ExposureIndex(), feeds)
    assert outcome.parked == []


async def _compute(
    runtimes: dict[str, ServiceRuntime], incident: uuid.UUID, scope: Scope
) -> uuid.UUID:
    feeds = {n: LocalLogFeed(r.engine, n) for n, r in runtimes.items()}
    done = await blast.compute(
        runtimes["incident"],
        incident_id=incident,
        scope=scope,
        staff_id="officer-1",
        role="security-officer",
        feeds=feeds,
    )
    return done.computation_id


def _relay(stack: LocalStack, rt: ServiceRuntime) -> dict[NoticeChannel, ChannelSender]:
    url = f"smtp://127.0.0.1:{stack.ports[SMTP_SINK]}"
    return {NoticeChannel.EMAIL: EmailSender(MailSender(url, rt.settings.mail_from, timeout=2))}


async def test_notices_go_to_the_notifiable_subjects_of_a_stored_blast_radius_in_their_language(
    runtimes: dict[str, ServiceRuntime],
    http: tuple[httpx.AsyncClient, IssuedTokens],
    sink: LocalStack,
) -> None:
    client, verifier = http
    rt, gateway, identity = runtimes["incident"], runtimes["sharing-gateway"], runtimes["identity"]
    start = utcnow() - timedelta(days=7)
    end = utcnow()
    partner, other = f"leaky-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    tag = uuid.uuid4().hex[:8]
    mails = {
        "es": f"radius-es-{tag}@example.com",
        "es-MX": f"radius-esmx-{tag}@example.com",
        None: f"radius-none-{tag}@example.com",
        "outside": f"radius-outside-{tag}@example.com",
        "before": f"radius-before-{tag}@example.com",
        "sealed": f"radius-sealed-{tag}@example.com",
    }
    spanish = await _customer(rt, mails["es"], "es")
    mexican = await _customer(rt, mails["es-MX"], "es-MX")
    english = await _customer(rt, mails[None], None)
    outside = await _customer(rt, mails["outside"], "es")
    before = await _customer(rt, mails["before"], None)
    sealed = await _customer(rt, mails["sealed"], None)
    for s in (spanish, mexican, english):
        await _disclose(gateway, s, partner, start + timedelta(days=1))
    await _disclose(gateway, outside, other, start + timedelta(days=1))  # another partner
    await _disclose(gateway, before, partner, start - timedelta(hours=1))  # before the window
    reader = Actor.system(f"loans-{tag}")
    await _sealed_read(identity, sealed, reader, start + timedelta(days=2))
    await _index(runtimes)

    incident = (  # a reported incident: the routes act only for known ones (404 otherwise)
        await response.report_incident(
            rt,
            summary="A partner's credential reached an unknown party",
            source=Source.STAFF,
            staff_id=f"officer-{tag}",
            roles=frozenset({"security-officer"}),
        )
    ).incident_id
    by_partner = await _compute(
        runtimes, incident, Scope(ScopeKind.PARTNER, partner, start, end, frozenset())
    )
    by_reader = await _compute(
        runtimes, incident, Scope(ScopeKind.SERVICE, reader.id, start, end, frozenset())
    )
    officer = _officer(verifier)
    url = f"/v1/incidents/{incident}/breach-notices"
    body = {"content": PARTS, "translations": {"es": SPANISH}}

    # only the response team; one source of subjects; only this incident's computations
    customer = verifier.issue(Principal(kind=ActorKind.USER, id=spanish))
    denied = await client.post(
        url, json=body | {"blast_radius_id": str(by_partner)}, headers=customer
    )
    assert denied.status_code == 403
    neither = await client.post(url, json=body, headers=officer)
    both = await client.post(
        url,
        json=body | {"blast_radius_id": str(by_partner), "subjects": [{"subject_id": spanish}]},
        headers=officer,
    )
    assert (neither.status_code, both.status_code) == (422, 422)
    elsewhere = await client.post(
        f"/v1/incidents/{uuid.uuid4()}/breach-notices",
        json=body | {"blast_radius_id": str(by_partner)},
        headers=officer,
    )
    assert elsewhere.status_code == 404
    unknown = await client.post(
        url, json=body | {"blast_radius_id": str(uuid.uuid4())}, headers=officer
    )
    assert unknown.status_code == 404

    # the sealed-only computation notifies nobody (sealed under a safe key: no notification)
    safe = await client.post(url, json=body | {"blast_radius_id": str(by_reader)}, headers=officer)
    assert safe.status_code == 202, safe.text
    assert safe.json()["planned"] == 0

    sent = await client.post(url, json=body | {"blast_radius_id": str(by_partner)}, headers=officer)
    assert sent.status_code == 202, sent.text
    assert (sent.json()["planned"], sent.json()["unreachable"]) == (3, 0)
    for s in (spanish, mexican, english):
        assert s not in sent.text  # the officer is not handed the list
    again = await client.post(
        url, json=body | {"blast_radius_id": str(by_partner)}, headers=officer
    )
    assert (again.json()["planned"], again.json()["already"]) == (0, 3)

    await notices.deliver_due_notices(rt, _relay(sink, rt), utcnow(), limit=1000)
    for language in ("es", "es-MX"):
        [mail] = sink.wait_for_mail(mails[language], 1)
        assert mail.subject == breach.HEADINGS["es"]["title"]
        for text in (SPANISH["situation"], *SPANISH["impacts"], SPANISH["remedies"]):
            assert text in mail.body
    [mail] = sink.wait_for_mail(mails[None], 1)
    assert mail.subject == breach.HEADINGS["en"]["title"]
    for key in ("situation", "measures", "advice", "remedies"):
        assert PARTS[key] in mail.body
    for name in ("outside", "before", "sealed"):
        assert sink.mail_to(mails[name]) == []  # no more than the radius's notifiable subjects

    counts = await client.get(url, headers=officer)
    assert counts.status_code == 200
    assert counts.json()["states"] == {"completed": 3}
    assert counts.json()["channels"] == {"email": {"completed": 3}}
    assert counts.json()["fallbacks"] == {}

    # the run names the computation it came from, and no subject
    async with rt.engine.connect() as conn:
        records = await EventStore.read_records(conn, 0, 100_000, [BreachNoticesPlanned.event_type])
    planned = [(await rt.mapper.from_record(r.record)).payload for r in records]
    mine = [p for p in planned if getattr(p, "incident_id", None) == incident]
    assert [getattr(p, "blast_radius_id", None) for p in mine] == [
        by_reader,
        by_partner,
        by_partner,
    ]
    assert [getattr(p, "languages", None) for p in mine][1] == ["en", "es"]


def test_a_preferences_event_recorded_before_the_language_still_reads() -> None:
    old = {"channels": ["email"], "channel": "provided-by-user"}
    assert NotificationPreferencesSet.model_validate(old).language is None
    with pytest.raises(ValueError):
        NotificationPreferencesSet.model_validate(old | {"language": "not a language"})
