"""Notification contacts in memory: the shared contact fold applied to each of identity's
events, and what an operator may see."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.identity import AccountOpened, SignedIn
from expensura_events.catalog.identity_profile import ContactDetailsCorrected
from expensura_events.envelope import REDACTED, Actor, DomainEvent, EventEnvelope, new_event_id
from expensura_events.vocabulary import CollectionChannel, Purpose
from expensura_incident.contacts.domain import contact_check, contact_update
from expensura_incident.contacts.projection import NotificationContacts

SUBJECT = str(uuid.uuid4())
AT = datetime(2026, 11, 26, 9, tzinfo=UTC)


def _event(payload: DomainEvent, subject: str | None = SUBJECT) -> EventEnvelope:
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source="identity",
        stream_id=f"account-{SUBJECT}",
        stream_version=0,
        subject_id=subject,
        actor=Actor.system("tests"),
        purpose=Purpose.ACCOUNT_MANAGEMENT,
        correlation_id=new_event_id(),
        occurred_at=AT,
        payload=payload,
    )


def _opened(email: str, phone: str | None) -> AccountOpened:
    return AccountOpened.model_construct(
        account_id=uuid.UUID(SUBJECT),
        email=email,
        phone=phone,
        channel=CollectionChannel.PROVIDED_BY_USER,
    )


@pytest.mark.obligation("RGT-2")
def test_a_sign_up_and_a_correction_set_the_fields_they_carry() -> None:
    opened = _event(_opened("ann@example.com", "+14155550100"))
    update = contact_update(opened)
    assert update is not None
    assert update.values == {"email": "ann@example.com", "phone": "+14155550100"}
    assert (update.subject_id, update.event_id, update.at) == (SUBJECT, opened.event_id, AT)
    corrected = contact_update(
        _event(ContactDetailsCorrected(email="ann@example.org", channel="provided-by-user"))
    )
    assert corrected is not None and corrected.values == {"email": "ann@example.org"}


@pytest.mark.obligation("RGT-3")
def test_a_redacted_event_still_moves_the_row_but_sets_no_value() -> None:
    update = contact_update(_event(_opened(REDACTED, REDACTED)))
    assert update is not None and update.values == {}


def test_other_events_and_events_without_a_subject_change_nothing() -> None:
    signed_in = SignedIn(principal_kind="user", session_id=uuid.uuid4(), methods=["pwd"])
    assert contact_update(_event(signed_in)) is None
    assert contact_update(_event(_opened("ann@example.com", None), subject=None)) is None


class _Recorder:
    """Stands in for the connection: keeps the statements the projection executes."""

    def __init__(self) -> None:
        self.params: list[dict[str, Any]] = []

    async def execute(self, statement: Any) -> None:
        self.params.append(statement.compile().params)


@pytest.mark.obligation("RGT-2")
async def test_the_projection_upserts_exactly_the_values_the_fold_takes() -> None:
    recorder = _Recorder()
    conn = cast(AsyncConnection, recorder)
    opened = _event(_opened("ann@example.com", REDACTED))
    signed_in = SignedIn(principal_kind="user", session_id=uuid.uuid4(), methods=["pwd"])
    await NotificationContacts().apply(conn, opened)
    await NotificationContacts().apply(conn, _event(signed_in))
    [params] = recorder.params
    assert params["email"] == "ann@example.com" and "phone" not in params
    assert params["subject_id"] == SUBJECT and params["updated_from_event"] == opened.event_id


def test_an_operator_sees_a_digest_of_the_address_never_the_address() -> None:
    event_id = uuid.uuid4()
    check = contact_check(SUBJECT, "ann@example.com", "+14155550100", event_id, AT)
    assert check.email_sha256 == hashlib.sha256(b"ann@example.com").hexdigest()
    assert check.phone_present and "ann@" not in repr(check) and "+1415" not in repr(check)
    empty = contact_check(SUBJECT, None, None, event_id, AT)
    assert empty.email_sha256 is None and not empty.phone_present
