"""The stored record: canonical JSON of the envelope with every marked field sealed (SEC-1)."""

from __future__ import annotations

import json
import uuid

import pytest

import expensura_events.testing.events  # noqa: F401  (registers testing.NoteRecorded)
from expensura_events.cipher import ENC_MARK, FieldCipher
from expensura_events.envelope import REDACTED, key_owner
from expensura_events.keystore import InMemoryKeyStore
from expensura_events.mapper import EventMapper, MissingDataSubject, canonical_json
from expensura_events.testing.events import NoteRecorded, note

pytestmark = pytest.mark.obligation("SEC-1")


@pytest.fixture
def mapper() -> EventMapper:
    return EventMapper(FieldCipher(InMemoryKeyStore()))


def test_canonical_json_is_one_byte_string_per_value() -> None:
    assert canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}}) == (
        '{"a":{"c":"é","d":[1,2]},"b":1}'.encode()
    )
    assert canonical_json({"a": 1, "b": 2}) == canonical_json({"b": 2, "a": 1})


async def test_only_the_marked_field_is_sealed_and_the_record_holds_no_plaintext(
    mapper: EventMapper,
) -> None:
    envelope = note(str(uuid.uuid4()), "call me on +14155550123", counter=3)
    sealed = await mapper.seal_payload(envelope)
    assert sealed["note"][ENC_MARK] == "A256GCM"
    assert sealed["counter"] == 3 and sealed["priority"] == 0  # not personal: left readable
    record = mapper.to_record(envelope, sealed)
    assert b"+14155550123" not in record
    assert record == canonical_json(json.loads(record))  # stored canonically
    assert json.loads(record)["subject_id"] == envelope.subject_id


async def test_a_record_reads_back_as_the_typed_event(mapper: EventMapper) -> None:
    envelope = note(str(uuid.uuid4()), "call me on +14155550123")
    record = mapper.to_record(envelope, await mapper.seal_payload(envelope))
    read = await mapper.from_record(record, sequence=9)
    assert isinstance(read.payload, NoteRecorded)
    assert read.payload.note == "call me on +14155550123"
    assert (read.event_id, read.sequence) == (envelope.event_id, 9)


async def test_a_shredded_subjects_record_reads_redacted(mapper: EventMapper) -> None:
    s = str(uuid.uuid4())
    envelope = note(s, "secret")
    record = mapper.to_record(envelope, await mapper.seal_payload(envelope))
    await mapper.cipher.keys.destroy(s)
    read = await mapper.from_record(record)
    assert read.payload.note == REDACTED


async def test_a_held_record_is_sealed_with_the_holds_key(mapper: EventMapper) -> None:
    s = str(uuid.uuid4())
    held = note(s, "loan contract").model_copy(update={"retention_hold": "loan-records"})
    assert mapper.key_owner_needed(held) == key_owner(s, "loan-records")
    record = mapper.to_record(held, await mapper.seal_payload(held))
    await mapper.cipher.keys.destroy(s)  # erasing the subject leaves the held record readable
    assert (await mapper.from_record(record)).payload.note == "loan contract"


async def test_personal_data_without_a_subject_is_refused(mapper: EventMapper) -> None:
    envelope = note("s-1", "orphan").model_copy(update={"subject_id": None})
    assert mapper.key_owner_needed(envelope) is None
    with pytest.raises(MissingDataSubject):
        await mapper.seal_payload(envelope)
