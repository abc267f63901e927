"""The rules a record passes before any projection applies it (authenticity.py)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncConnection

import expensura_events.testing.events  # noqa: F401  (registers testing.NoteRecorded)
from expensura_events.authenticity import (
    MALFORMED,
    SIGNATURE,
    UNSEALED,
    UNSIGNED,
    WRONG_SIGNER,
    WRONG_TOPIC,
    EventSigner,
    EventVerifier,
    PublicKeys,
    RejectedEvent,
    fallback_event_id,
)
from expensura_events.catalog.consent import ConsentGiven
from expensura_events.catalog.rights import ErasureConfirmed
from expensura_events.cipher import FieldCipher
from expensura_events.deadletters import Delivery
from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, new_event_id
from expensura_events.keystore import InMemoryKeyStore
from expensura_events.mapper import EventMapper, canonical_json
from expensura_events.projections import unverified, verified
from expensura_events.store import EventSigningKeyMissing, EventStore
from expensura_events.testing.events import note
from expensura_events.vocabulary import Purpose

pytestmark = pytest.mark.obligation("SEC-3")

SUBJECT = str(uuid.uuid4())


def seed(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


def public(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


KEYS = {name: Ed25519PrivateKey.generate() for name in ("identity", "incident", "loans")}
SIGNERS = {name: EventSigner.from_base64(name, seed(k)) for name, k in KEYS.items()}
VERIFIER = EventVerifier(PublicKeys.from_base64({n: [public(k)] for n, k in KEYS.items()}))
MAPPER = EventMapper(FieldCipher(InMemoryKeyStore()), verifier=VERIFIER)


async def sealed(envelope: EventEnvelope) -> bytes:
    return MAPPER.to_record(envelope, await MAPPER.seal_payload(envelope))


def envelope(payload: DomainEvent, source: str) -> EventEnvelope:
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source=source,
        stream_id="s",
        stream_version=1,
        subject_id=SUBJECT,
        actor=Actor.system("tests"),
        purpose=Purpose.LEGAL_COMPLIANCE,
        correlation_id=new_event_id(),
        payload=payload,
    )


def verify(owner: str, record: bytes, signer: EventSigner | None) -> dict[str, Any]:
    if signer is None:
        return VERIFIER.verify(owner, record, None, None)
    signed = signer.sign(record)
    return VERIFIER.verify(owner, record, signed.signature, signed.key_id)


def reason(owner: str, record: bytes, signer: EventSigner | None) -> str:
    with pytest.raises(RejectedEvent) as refused:
        verify(owner, record, signer)
    return refused.value.reason


async def test_a_record_signed_by_its_topics_owner_with_sealed_fields_passes() -> None:
    record = await sealed(note(SUBJECT, "call me"))
    assert (
        verify("identity", record, SIGNERS["identity"])["event_id"]
        == json.loads(record)["event_id"]
    )


async def test_unsigned_and_unknown_keys_are_refused() -> None:
    record = await sealed(note(SUBJECT, "call me"))
    assert reason("identity", record, None) == UNSIGNED
    outsider = EventSigner("identity", Ed25519PrivateKey.generate())
    assert reason("identity", record, outsider) == SIGNATURE


async def test_another_services_key_is_the_wrong_signer_even_when_its_signature_holds() -> None:
    record = await sealed(note(SUBJECT, "call me"))
    assert reason("identity", record, SIGNERS["loans"]) == WRONG_SIGNER


async def test_the_signature_binds_the_bytes_and_the_key_id_cannot_be_borrowed() -> None:
    record = await sealed(note(SUBJECT, "call me"))
    signed = SIGNERS["identity"].sign(record)
    data = json.loads(record)
    data["actor"]["id"] = "someone-else"
    with pytest.raises(RejectedEvent) as altered:
        VERIFIER.verify("identity", canonical_json(data), signed.signature, signed.key_id)
    assert altered.value.reason == SIGNATURE
    # loans' signature presented under identity's key id
    by_loans = SIGNERS["loans"].sign(record)
    with pytest.raises(RejectedEvent) as borrowed:
        VERIFIER.verify("identity", record, by_loans.signature, signed.key_id)
    assert borrowed.value.reason == SIGNATURE


async def test_a_record_claiming_another_source_than_its_signer_is_refused() -> None:
    record = await sealed(note(SUBJECT, "call me", source="loans"))
    assert reason("identity", record, SIGNERS["identity"]) == WRONG_SIGNER


def test_an_event_type_of_another_service_is_the_wrong_topic() -> None:
    # signed by identity, on identity's topic, but a type only consent publishes
    record = canonical_json(
        json.loads(MAPPER.to_record(envelope(note(SUBJECT, "x").payload, "identity"), {}))
        | {"event_type": ConsentGiven.event_type}
    )
    assert reason("identity", record, SIGNERS["identity"]) == WRONG_TOPIC


@pytest.mark.obligation("SEC-1")
async def test_a_personal_field_in_plaintext_or_in_a_broken_box_is_refused() -> None:
    plain = note(SUBJECT, "call me on +14155550123")
    record = MAPPER.to_record(plain, plain.payload.model_dump(mode="json"))
    assert reason("identity", record, SIGNERS["identity"]) == UNSEALED
    box = json.loads(await sealed(plain))
    del box["payload"]["note"]["ct"]
    assert reason("identity", canonical_json(box), SIGNERS["identity"]) == UNSEALED


def test_erasure_is_confirmed_only_by_the_service_it_names() -> None:
    def confirmation(service: str, source: str) -> bytes:
        payload = ErasureConfirmed(request_id=uuid.uuid4(), service=service, purged={})
        return MAPPER.to_record(envelope(payload, source), payload.model_dump(mode="json"))

    assert verify("incident", confirmation("incident", "incident"), SIGNERS["incident"])
    assert reason("incident", confirmation("loans", "incident"), SIGNERS["incident"]) == (
        WRONG_SIGNER
    )


def test_a_signed_record_that_is_not_an_envelope_is_malformed() -> None:
    assert reason("identity", b"not json", SIGNERS["identity"]) == MALFORMED
    assert reason("identity", b'{"event_id": "x"}', SIGNERS["identity"]) == MALFORMED


async def test_rotation_publishes_the_next_key_first_and_retiring_a_key_refuses_it() -> None:
    old, new = KEYS["identity"], Ed25519PrivateKey.generate()
    record = await sealed(note(SUBJECT, "call me"))
    both = EventVerifier(PublicKeys.from_base64({"identity": [public(old), public(new)]}))
    for key in (old, new):
        signed = EventSigner.from_base64("identity", seed(key)).sign(record)
        assert both.verify("identity", record, signed.signature, signed.key_id)
    retired = EventVerifier(PublicKeys.from_base64({"identity": [public(new)]}))
    signed = SIGNERS["identity"].sign(record)
    with pytest.raises(RejectedEvent) as refused:
        retired.verify("identity", record, signed.signature, signed.key_id)
    assert refused.value.reason == SIGNATURE


async def test_the_inbox_id_is_the_verified_records_not_the_headers() -> None:
    record = await sealed(note(SUBJECT, "call me"))
    signed = SIGNERS["identity"].sign(record)
    claimed = str(uuid.uuid4())
    delivery = Delivery("identity", claimed, record, None, None, signed.signature, signed.key_id)
    assert verified(MAPPER, delivery).event_id == json.loads(record)["event_id"] != claimed


def test_a_mapper_without_published_keys_refuses_everything() -> None:
    record = b"{}"
    signed = SIGNERS["identity"].sign(record)
    bare = EventMapper(FieldCipher(InMemoryKeyStore()))
    delivery = Delivery("identity", "x", record, None, None, signed.signature, signed.key_id)
    with pytest.raises(RejectedEvent):
        verified(bare, delivery)


def test_unverifiable_records_park_under_a_stable_uuid() -> None:
    claimed = str(uuid.uuid4())
    assert fallback_event_id(b"anything", claimed) == claimed
    assert fallback_event_id(b"anything", "not-a-uuid") == fallback_event_id(b"anything", None)
    assert fallback_event_id(b"a", None) != fallback_event_id(b"b", None)


async def test_a_service_without_a_signing_key_appends_nothing() -> None:
    unsigned_store = EventStore(MAPPER)
    with pytest.raises(EventSigningKeyMissing):
        await unsigned_store.append(cast(AsyncConnection, object()), [note(SUBJECT, "x")])


def test_a_refused_record_of_any_shape_still_parks_under_an_id() -> None:
    deep = b"[" * 100_000  # deeper than the JSON parser recurses
    delivery = Delivery("identity", "\ufffd", deep)
    with pytest.raises(RejectedEvent) as refused:
        verified(MAPPER, delivery)
    assert refused.value.reason == UNSIGNED
    assert unverified(delivery).event_id == fallback_event_id(deep, None)
