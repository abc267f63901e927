"""Folding a subject's events once their key is destroyed: the redaction marker is no value.

The events go through the real mapping (sealed with a key, read back after the key is gone),
so the payloads are exactly what a reader gets after crypto-shredding.
"""

from __future__ import annotations

import base64
import os
import uuid
from types import SimpleNamespace
from typing import Any

from expensura_consent.subjects.projection import KnownSubjects
from expensura_events.catalog.identity import AccountOpened
from expensura_events.catalog.identity_profile import ContactDetailsCorrected
from expensura_events.cipher import DataKey, FieldCipher
from expensura_events.contacts import Contact, current_contact
from expensura_events.envelope import REDACTED, Actor, DomainEvent, EventEnvelope, new_event_id
from expensura_events.keystore import InMemoryKeyStore
from expensura_events.mapper import EventMapper
from expensura_events.vocabulary import CollectionChannel, Purpose
from expensura_incident.contacts.projection import NotificationContacts

SUBJECT = str(uuid.uuid4())
CHANNEL = CollectionChannel.PROVIDED_BY_USER


class _NoKeyStore:
    """Never asked: the keys are handed to the mapper."""

    async def get(self, subject_id: str) -> DataKey | None:
        raise AssertionError("no key store in these tests")

    async def readable(self, subject_id: str) -> dict[str, DataKey]:
        raise AssertionError("no key store in these tests")

    async def live(self, subject_id: str) -> bool:
        raise AssertionError("no key store in these tests")

    async def get_or_create(self, subject_id: str) -> DataKey:
        raise AssertionError("no key store in these tests")

    async def get_or_create_many(self, subject_ids: set[str]) -> dict[str, DataKey]:
        raise AssertionError("no key store in these tests")

    async def destroy(self, subject_id: str) -> bool:
        raise AssertionError("no key store in these tests")


def _envelope(payload: DomainEvent) -> EventEnvelope:
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source="identity",
        stream_id=f"account-{SUBJECT}",
        stream_version=0,
        subject_id=SUBJECT,
        actor=Actor.system("tests"),
        purpose=Purpose.ACCOUNT_MANAGEMENT,
        correlation_id=new_event_id(),
        payload=payload,
    )


async def _read(payload: DomainEvent, *, key_destroyed: bool) -> EventEnvelope:
    mapper = EventMapper(FieldCipher(_NoKeyStore()))
    key = DataKey(uuid.uuid4(), os.urandom(32))
    envelope = _envelope(payload)
    record = mapper.to_record(envelope, await mapper.seal_payload(envelope, {SUBJECT: key}))
    readable = {} if key_destroyed else {str(key.key_id): key}
    return await mapper.from_record(record, keys={SUBJECT: readable})


OPENED = AccountOpened(
    account_id=uuid.UUID(SUBJECT), email="ann@example.com", phone="+14155550100", channel=CHANNEL
)
CORRECTED = ContactDetailsCorrected(email="ann@example.org", channel=CHANNEL)


async def test_the_contact_fold_takes_the_latest_values_with_their_channel() -> None:
    events = [await _read(p, key_destroyed=False) for p in (OPENED, CORRECTED)]
    found = current_contact(events)
    assert {k: v.value for k, v in found.items()} == {
        "email": "ann@example.org",
        "phone": "+14155550100",
    }
    assert found.email is not None and found.email.channel is CHANNEL


async def test_after_shredding_the_contact_fold_finds_nothing_and_does_not_fail() -> None:
    events = [await _read(p, key_destroyed=True) for p in (OPENED, CORRECTED)]
    assert events[0].payload.email == REDACTED  # what the fold must not take for an address
    assert current_contact(events) == Contact()


class _Recorder:
    """Stands in for the connection: keeps the statements a projection executes."""

    def __init__(self) -> None:
        self.params: list[dict[str, Any]] = []

    async def execute(self, statement: Any) -> None:
        self.params.append(statement.compile().params)


async def test_projections_apply_a_redacted_sign_up_without_failing_or_keeping_the_marker() -> None:
    opened = await _read(OPENED, key_destroyed=True)
    consent, incident = _Recorder(), _Recorder()
    await KnownSubjects().apply(consent, opened)  # type: ignore[arg-type]
    contacts = NotificationContacts()
    contacts.bind(
        SimpleNamespace(
            mapper=SimpleNamespace(cipher=FieldCipher(InMemoryKeyStore())),
            settings=SimpleNamespace(master_key=base64.b64encode(bytes(32)).decode()),
        )
    )
    await contacts.apply(incident, opened)  # type: ignore[arg-type]
    assert consent.params[0]["channel"] == CHANNEL.value
    assert REDACTED not in incident.params[0].values()
