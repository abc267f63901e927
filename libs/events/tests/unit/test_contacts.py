"""The one fold of a subject's current contact details (RGT-2), shared by identity and by
every service that keeps a copy; and access-log categories from the catalog's markers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from expensura_events.catalog.identity import AccountOpened, SignedOut
from expensura_events.catalog.identity_profile import ContactDetailsCorrected, DeviceRegistered
from expensura_events.contacts import (
    Contact,
    apply_contact,
    contact_categories,
    contact_changes,
    current_contact,
)
from expensura_events.envelope import REDACTED, Actor, DomainEvent, EventEnvelope, new_event_id
from expensura_events.registry import personal_categories
from expensura_events.vocabulary import CollectionChannel, Purpose

SUBJECT = str(uuid.uuid4())
T0 = datetime(2026, 11, 26, 9, tzinfo=UTC)


def _event(payload: DomainEvent, minutes: int) -> EventEnvelope:
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source="identity",
        stream_id=f"account-{SUBJECT}",
        stream_version=minutes,
        subject_id=SUBJECT,
        actor=Actor.system("tests"),
        purpose=Purpose.ACCOUNT_MANAGEMENT,
        correlation_id=new_event_id(),
        occurred_at=T0 + timedelta(minutes=minutes),
        payload=payload,
    )


def _opened(email: str = "ann@example.com", phone: str | None = "+14155550100") -> AccountOpened:
    return AccountOpened.model_construct(
        account_id=uuid.UUID(SUBJECT),
        email=email,
        phone=phone,
        channel=CollectionChannel.PROVIDED_BY_USER,
    )


def _corrected(
    email: str | None = None, phone: str | None = None, channel: str = "provided-by-user"
) -> ContactDetailsCorrected:
    # model_construct: a payload read after erasure carries the marker and a plain string
    plain: Any = channel
    return ContactDetailsCorrected.model_construct(email=email, phone=phone, channel=plain)


@pytest.mark.obligation("RGT-2", "COL-4")
def test_each_field_takes_its_latest_value_with_how_and_when_it_was_collected() -> None:
    events = [
        _event(_opened(), 0),
        _event(_corrected(email="ann@example.org"), 5),
        _event(_corrected(phone="+14155550199", channel="other-lawful"), 9),
    ]
    contact = current_contact(events)
    assert contact.as_values() == {"email": "ann@example.org", "phone": "+14155550199"}
    assert contact.email is not None and contact.email.collected_at == T0 + timedelta(minutes=5)
    assert contact.email.event_id == events[1].event_id
    assert contact.phone is not None and contact.phone.channel is CollectionChannel.OTHER_LAWFUL


@pytest.mark.obligation("RGT-2")
def test_a_correction_of_one_field_leaves_the_other_and_order_decides() -> None:
    opened, fix = _event(_opened(), 0), _event(_corrected(email="new@example.com"), 1)
    assert current_contact([opened, fix]).as_values()["phone"] == "+14155550100"
    assert current_contact([opened, fix]).as_values()["email"] == "new@example.com"
    again = _event(_corrected(email="newer@example.com"), 2)
    assert current_contact([opened, fix, again]).as_values()["email"] == "newer@example.com"


@pytest.mark.obligation("RGT-3")
def test_after_shredding_a_redacted_value_is_no_value() -> None:
    redacted = [_event(_opened(REDACTED, REDACTED), 0), _event(_corrected(email=REDACTED), 1)]
    assert current_contact(redacted) == Contact()
    assert current_contact(redacted).as_values() == {"email": None, "phone": None}
    # a later readable value (another key's copy) still counts; a redacted one never hides it
    mixed = [_event(_opened(), 0), _event(_corrected(email=REDACTED), 1)]
    assert current_contact(mixed).as_values()["email"] == "ann@example.com"


def test_other_events_change_nothing_and_are_told_apart_from_empty_corrections() -> None:
    other = _event(SignedOut(session_id=uuid.uuid4()), 1)
    device = _event(
        DeviceRegistered(
            device_id=uuid.uuid4(),
            model="x",
            os_version="y",
            app_version="z",
            tracking_allowed=False,
            channel=CollectionChannel.ACTIVELY_COLLECTED,
        ),
        2,
    )
    assert contact_changes(other) is None and contact_changes(device) is None
    assert contact_changes(_event(_corrected(email=REDACTED), 3)) == {}
    start = current_contact([_event(_opened(), 0)])
    assert apply_contact(start, other) is start
    assert [name for name, _ in start.items()] == ["email", "phone"]
    assert Contact().items() == []


@pytest.mark.obligation("SEC-3")
def test_access_log_categories_come_from_the_catalogs_field_markers() -> None:
    assert contact_categories() == ["pd:Contact"]
    assert contact_categories(["phone"]) == ["pd:Contact"]
    assert contact_categories([]) == []
    assert personal_categories(DeviceRegistered, ["model", "idfa"]) == ["pd:DeviceBased"]
    assert personal_categories(DeviceRegistered) == ["pd:DeviceBased"]
    with pytest.raises(ValueError, match="tracking_allowed"):
        personal_categories(DeviceRegistered, ["tracking_allowed"])
