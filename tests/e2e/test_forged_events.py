"""Forged events on the broker, end to end: real service processes, PostgreSQL and broker.

The broker authenticates nobody, so the attacker here publishes straight to the services'
topics with aiokafka: records shaped exactly like the relay's (personal fields sealed with
the subject's real key, the relay's headers), but unsigned, signed by the wrong service,
signed with a key nobody published, altered after signing, or with a personal field left
in plaintext. Every one must be parked as a dead letter with its reason, counted in
`/internal/workers`, and applied nowhere, while genuine events keep flowing.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from expensura_events.authenticity import EventSigner
from expensura_events.catalog.identity_profile import ContactDetailsCorrected
from expensura_events.catalog.identity_verification import RealNameVerified
from expensura_events.catalog.rights import ErasureConfirmed, ErasureRequested
from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, new_event_id, utcnow
from expensura_events.mapper import EventMapper, canonical_json
from expensura_events.runtime import ServiceRuntime
from expensura_events.testing.events import forged_account_opened
from expensura_events.topology import events_topic
from expensura_events.vocabulary import CollectionChannel, Purpose
from expensura_identity.app import service_definition as identity
from expensura_ops.testing import tokens
from expensura_ops.testing.stack import LocalStack, eventually

IDENTITY_FOLLOWERS = {  # service → its projections that follow identity's topic
    "incident": ("notification-contacts", "subject-lifecycle"),
    "loans": ("verified-subjects", "subject-lifecycle"),
}


def sign_up(url: str) -> str:
    return tokens.sign_up(url, phone="+14155550100")


def envelope(payload: DomainEvent, subject: str, source: str) -> EventEnvelope:
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source=source,
        stream_id=f"forged-{uuid.uuid4()}",
        stream_version=1,
        subject_id=subject,
        actor=Actor.system(source),
        purpose=Purpose.LEGAL_COMPLIANCE,
        correlation_id=new_event_id(),
        recorded_at=utcnow(),
        payload=payload,
    )


async def sealed_record(rt: ServiceRuntime, e: EventEnvelope) -> bytes:
    """The bytes the relay would publish: personal fields sealed with the subject's key."""
    return EventMapper.to_record(e, await rt.mapper.seal_payload(e))


def plaintext_record(e: EventEnvelope) -> bytes:
    return EventMapper.to_record(e, e.payload.model_dump(mode="json"))


def headers(
    record: bytes, signer: EventSigner | None = None, *, event_id: str | None = None
) -> list[tuple[str, bytes]]:
    data = json.loads(record)
    out = [
        ("event_type", data["event_type"].encode()),
        ("event_id", (event_id or data["event_id"]).encode()),
        ("seq", b"1"),
        ("source", data["source"].encode()),
    ]
    if signer is not None:
        signed = signer.sign(record)
        out += [
            ("signature", signed.signature),
            ("key_id", signed.key_id.encode()),
            ("signer", signed.signer.encode()),
        ]
    return out


def signer_of(stack: LocalStack, service: str) -> EventSigner:
    return EventSigner.from_base64(service, stack.env[service]["EXPENSURA_EVENT_SIGNING_KEY"])


def workers(url: str, operator: httpx.Auth) -> dict[str, Any]:
    projections: dict[str, Any] = httpx.get(f"{url}/internal/workers", auth=operator).json()[
        "projections"
    ]
    return projections


async def scalar(stack: LocalStack, service: str, sql: str, **params: object) -> Any:
    engine = create_async_engine(stack.database_url(service, admin=True))
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar_one()
    finally:
        await engine.dispose()


async def rows(stack: LocalStack, service: str, sql: str, **params: object) -> list[Any]:
    engine = create_async_engine(stack.database_url(service, admin=True))
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())
    finally:
        await engine.dispose()


@pytest.mark.obligation("SEC-3")
@pytest.mark.obligation("SEC-1")
@pytest.mark.obligation("SEC-4")
async def test_forged_events_are_dead_lettered_counted_and_applied_nowhere(
    fresh_stack: LocalStack,
) -> None:
    for name in ("identity", "incident", "loans"):
        fresh_stack.start(name)
    url = {n: fresh_stack.processes[n].url for n in ("identity", "incident", "loans")}
    inside = {n: fresh_stack.processes[n].internal_url for n in ("identity", "incident", "loans")}
    victim = sign_up(url["identity"])

    async def contact_of(subject: str) -> httpx.Response:
        async with httpx.AsyncClient(auth=fresh_stack.operator) as client:
            return await client.get(
                f"{inside['incident']}/internal/notification-contacts/{subject}"
            )

    async def projected() -> dict[str, Any] | None:
        resp = await contact_of(victim)
        return resp.json() if resp.is_success else None

    genuine = await eventually(projected, what="the victim's sign-up reaches incident")

    identity_signer, loans_signer = (
        signer_of(fresh_stack, "identity"),
        signer_of(fresh_stack, "loans"),
    )
    incident_signer = signer_of(fresh_stack, "incident")
    outsider = EventSigner("identity", Ed25519PrivateKey.generate())  # a key nobody published
    stranger = str(uuid.uuid4())  # a subject identity never opened an account for
    request_id = uuid.uuid4()
    ns = fresh_stack.env["identity"]["EXPENSURA_TOPIC_NAMESPACE"]

    rt = ServiceRuntime(identity, fresh_stack.settings("identity"))
    try:
        erasure = envelope(ErasureRequested(request_id=request_id), victim, "identity")
        verified = envelope(
            RealNameVerified(
                request_id=uuid.uuid4(),
                trust_framework="cn_rnv",
                verified_at=utcnow(),
                verifier="forger",
                transaction_id="t-1",
                evidence="[]",
            ),
            victim,
            "identity",
        )
        redirect = envelope(
            ContactDetailsCorrected(
                email="attacker@example.com", channel=CollectionChannel.PROVIDED_BY_USER
            ),
            victim,
            "identity",
        )
        redirect_record = await sealed_record(rt, redirect)
        tampered = envelope(
            ContactDetailsCorrected(
                email="attacker-2@example.com", channel=CollectionChannel.PROVIDED_BY_USER
            ),
            victim,
            "identity",
        )
        tampered_record = await sealed_record(rt, tampered)
        confirmed_for_loans = envelope(
            ErasureConfirmed(request_id=request_id, service="loans", purged={}), victim, "incident"
        )
        confirmed_unsigned = envelope(
            ErasureConfirmed(request_id=request_id, service="loans", purged={}), victim, "loans"
        )
        unsealed = envelope(
            forged_account_opened(stranger, f"plain-{uuid.uuid4().hex[:8]}@example.com").payload,
            stranger,
            "identity",
        )
        verified_record = await sealed_record(rt, verified)
        async with rt.engine.connect() as conn:
            [signup] = [
                r
                for r in await rt.store.read_records(conn, 0, 1000)
                if r.event_type == "identity.AccountOpened" and r.subject_id == victim
            ]
    finally:
        await rt.close()

    # A record identity really signed, altered afterwards: the signature binds the bytes.
    tampered_headers = headers(tampered_record, identity_signer)
    altered = json.loads(tampered_record)
    altered["actor"]["id"] = "someone-else"
    tampered_record = canonical_json(altered)
    assert signup.signature is not None and signup.signing_key_id is not None
    replay_id = str(uuid.uuid4())
    erasure_record = plaintext_record(erasure)  # nothing personal in it to seal
    unsealed_record = plaintext_record(unsealed)
    confirmed_record, unsigned_confirmation = (
        plaintext_record(confirmed_for_loans),
        plaintext_record(confirmed_unsigned),
    )

    forgeries: list[tuple[str, bytes, list[tuple[str, bytes]], str]] = [
        # (topic owner, record, headers, the subject the partition key names)
        ("identity", erasure_record, headers(erasure_record), victim),
        ("identity", verified_record, headers(verified_record, loans_signer), victim),
        ("identity", redirect_record, headers(redirect_record, outsider), victim),
        ("identity", tampered_record, tampered_headers, victim),
        ("identity", unsealed_record, headers(unsealed_record, identity_signer), stranger),
        ("incident", confirmed_record, headers(confirmed_record, incident_signer), victim),
        ("loans", unsigned_confirmation, headers(unsigned_confirmation), victim),
        # identity's genuine, signed sign-up again, under a new id in the header only
        (
            "identity",
            signup.record,
            [
                ("event_id", replay_id.encode()),
                ("signature", signup.signature),
                ("key_id", signup.signing_key_id.encode()),
            ],
            victim,
        ),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=fresh_stack.bootstrap_servers)
    await producer.start()
    try:
        for owner, record, hdrs, key in forgeries:
            await producer.send_and_wait(
                events_topic(owner, ns), record, key=key.encode(), headers=hdrs
            )
    finally:
        await producer.stop()

    identity_feed = {
        "unsigned": 1,
        "wrong-signer": 1,
        "signature": 2,
        "unsealed-personal-field": 1,
    }

    async def all_counted() -> bool:
        for service, names in IDENTITY_FOLLOWERS.items():
            status = workers(inside[service], fresh_stack.operator)
            if any(status[n]["rejected"] != identity_feed for n in names):
                return False
        certificates = workers(inside["identity"], fresh_stack.operator)["erasure-certificates"][
            "rejected"
        ]
        return bool(certificates == {**identity_feed, "unsigned": 2, "wrong-signer": 2})

    await eventually(all_counted, timeout=60, what="every forgery refused by every follower")

    # SEC-4: every service reported each record it refused once, in its own log (however
    # many of its projections parked it), and nothing the forger wrote went with it ...
    for service in ("identity", "incident", "loans"):
        refused = await scalar(
            fresh_stack,
            service,
            "SELECT count(DISTINCT event_id) FROM projection_dead_letters"
            " WHERE error_class = 'RejectedEvent'",
        )
        reported = await scalar(
            fresh_stack,
            service,
            "SELECT count(*) FROM event_log WHERE event_type = 'platform.ForgedEventRejected'",
        )
        assert refused == reported > 0, (service, refused, reported)
        leaked = (
            "SELECT count(*) FROM event_log WHERE position(convert_to(:n, 'UTF8') in record) > 0"
        )
        for needle in ("attacker", "plain-"):
            assert await scalar(fresh_stack, service, leaked, n=needle) == 0
    # ... and incident raised one incident per attacked topic, as system:forged-event, each
    # further refused record on that topic attached to it, whoever reported it.
    expected = {"forged-event:identity": 5, "forged-event:incident": 1, "forged-event:loans": 1}

    async def forged_incidents() -> bool:
        found = await rows(
            fresh_stack,
            "incident",
            "SELECT dedupe_key, count(*), count(DISTINCT incident_id), bool_or(raised)"
            " FROM auto_raised_causes GROUP BY dedupe_key",
        )
        return {k: (n, i, r) for k, n, i, r in found} == {
            k: (n, 1, True) for k, n in expected.items()
        }

    await eventually(forged_incidents, timeout=60, what="one incident per forged topic")
    raised = await rows(
        fresh_stack,
        "incident",
        "SELECT source, reported_by, state FROM incidents WHERE source = 'forged-event'",
    )
    assert sorted(raised) == [("forged-event", "system:forged-event", "reported")] * 3

    # A genuine event after the forgeries still applies: nothing stopped.
    later = sign_up(url["identity"])
    await eventually(lambda: _is_success(contact_of(later)), what="a later sign-up projected")

    # Applied nowhere: the victim is not erased, keeps their contact, is not "verified" in
    # loans; no erasure was confirmed; the plaintext sign-up left no contact.
    assert (await contact_of(victim)).json() == genuine
    assert (await contact_of(stranger)).status_code == 404
    for service in ("identity", "incident", "loans"):
        restricted = "SELECT count(*) FROM subject_restrictions WHERE subject_id = :s"
        assert await scalar(fresh_stack, service, restricted, s=victim) == 0
    assert (
        await scalar(
            fresh_stack,
            "loans",
            "SELECT count(*) FROM verified_subjects WHERE subject_id = :s",
            s=victim,
        )
        == 0
    )
    confirmations = "SELECT count(*) FROM erasure_confirmations WHERE request_id = :r"
    assert await scalar(fresh_stack, "identity", confirmations, r=request_id) == 0
    # The replayed sign-up counted as what its record says it is: a duplicate.
    inbox = "SELECT count(*) FROM projection_inbox WHERE event_id = :e"
    assert await scalar(fresh_stack, "incident", inbox, e=uuid.UUID(replay_id)) == 0
    contacts_status = workers(inside["incident"], fresh_stack.operator)["notification-contacts"]
    assert contacts_status["duplicates"] >= 1
    assert contacts_status["dead_lettered"] == contacts_status["dead_letters"] == 5

    # The operator's view: each refusal is a dead letter saying why, with nothing to retry.
    listed = fresh_stack.cli(
        "projections",
        "dead-letters",
        "--service",
        "incident",
        "--json",
        service_name="incident",
    )
    letters = [json.loads(x) for x in listed.stdout.splitlines() if x.startswith("{")]
    contacts = {
        str(x["event_id"]): x for x in letters if x["projection"] == "notification-contacts"
    }
    assert contacts[str(unsealed.event_id)]["error"].startswith(
        "RejectedEvent: unsealed-personal-field"
    )
    assert contacts[str(verified.event_id)]["error"].startswith("RejectedEvent: wrong-signer")
    assert contacts[str(erasure.event_id)]["error"].startswith("RejectedEvent: unsigned")
    assert all(x["error_class"] == "RejectedEvent" for x in letters)
    assert "plain-" not in listed.stdout + listed.stderr
    # A forgery was never in its source's log: a retry finds nothing to apply, and says so.
    retried = fresh_stack.cli(
        "projections",
        "dead-letters",
        "retry",
        str(verified.event_id),
        "--projection",
        "verified-subjects",
        "--service",
        "loans",
        service_name="loans",
        check=False,
    )
    assert retried.returncode == 1 and "nothing to retry" in retried.stdout, retried.stdout
    assert "Traceback" not in retried.stdout + retried.stderr
    assert (
        await scalar(
            fresh_stack,
            "loans",
            "SELECT count(*) FROM verified_subjects WHERE subject_id = :s",
            s=victim,
        )
        == 0
    )


async def _is_success(resp: Any) -> bool:
    return bool((await resp).is_success)
