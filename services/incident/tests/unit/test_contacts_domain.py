"""Notification contacts in memory: the shared contact fold applied to each of identity's
events, and what an operator may see."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.catalog.identity import AccountOpened, SignedIn
from expensura_events.catalog.identity_notifications import NotificationPreferencesSet
from expensura_events.catalog.identity_profile import ContactDetailsCorrected
from expensura_events.catalog.incident_notices import NoticeChannel
from expensura_events.cipher import ENC_MARK, LOOKUP_HMAC, FieldCipher
from expensura_events.envelope import REDACTED, Actor, DomainEvent, EventEnvelope, new_event_id
from expensura_events.keystore import InMemoryKeyStore
from expensura_events.vocabulary import CollectionChannel, Purpose
from expensura_incident.contacts.domain import (
    UnusableContact,
    contact_update,
    email_hmac,
    email_matches,
    preferences_update,
)
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


class _Secrets:
    """Stands in for the key store's service secrets: one random secret per label."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    async def get(self, label: str) -> bytes:
        return self.values.setdefault(label, os.urandom(32))


def _projection(keys: InMemoryKeyStore, secrets: _Secrets) -> NotificationContacts:
    projection = NotificationContacts()
    projection.bind(
        SimpleNamespace(
            mapper=SimpleNamespace(cipher=FieldCipher(keys)),
            secrets=secrets,
        )
    )
    return projection


@pytest.mark.obligation("RGT-2", "SEC-1")
async def test_the_projection_upserts_exactly_the_values_the_fold_takes_sealed() -> None:
    recorder = _Recorder()
    conn = cast(AsyncConnection, recorder)
    secrets = _Secrets()
    keys = InMemoryKeyStore()
    projection = _projection(keys, secrets)
    opened = _event(_opened("ann@example.com", REDACTED))
    signed_in = SignedIn(principal_kind="user", session_id=uuid.uuid4(), methods=["pwd"])
    await projection.apply(conn, opened)
    await projection.apply(conn, _event(signed_in))
    [params] = recorder.params
    assert "email" not in params and "phone" not in params and "phone_sealed" not in params
    assert "ann@example.com" not in repr(params)
    box = params["email_sealed"]
    assert box[ENC_MARK] and box["kid"] == str((await keys.get(SUBJECT)).key_id)  # type: ignore[union-attr]
    opened_box = await FieldCipher(keys).decrypt_fields(
        SUBJECT, f"notification_contacts:{SUBJECT}", {"email": box}
    )
    assert opened_box == {"email": "ann@example.com"}
    key = await secrets.get(LOOKUP_HMAC)  # incident's own look-up secret, not the master key
    assert params["email_hmac"] == email_hmac(key, "ann@example.com")
    assert params["subject_id"] == SUBJECT and params["updated_from_event"] == opened.event_id


def test_an_address_is_compared_by_a_keyed_digest_never_a_bare_hash() -> None:
    key, other = os.urandom(32), os.urandom(32)
    digest = email_hmac(key, "ann@example.com")
    assert email_matches(key, digest, "ann@example.com")
    assert not email_matches(key, digest, "ann@example.org")
    assert not email_matches(key, None, "ann@example.com")
    assert email_hmac(other, "ann@example.com") != digest  # useless without the key
    assert "ann@" not in digest and len(digest) == 64


def test_a_contact_with_control_characters_is_refused_not_kept() -> None:
    with pytest.raises(UnusableContact):
        contact_update(_event(_opened("ann\x00@example.com", None)))


@pytest.mark.obligation("USE-10")
def test_a_channel_choice_sets_the_order_token_and_address_and_a_redacted_one_sets_nothing() -> (
    None
):
    address = "Ann Lee\n12 Elm Street\nSpringfield, IL 62704"
    chosen = NotificationPreferencesSet(
        channels=[NoticeChannel.LETTER, NoticeChannel.EMAIL],
        mailing_address=address,
        channel=CollectionChannel.PROVIDED_BY_USER,
    )
    update = preferences_update(_event(chosen))
    assert update is not None
    assert update.channels == (NoticeChannel.LETTER, NoticeChannel.EMAIL)
    assert update.values == {"push_token": None, "mailing_address": address}  # None: cleared
    erased = NotificationPreferencesSet.model_construct(
        channels=["email"], push_token=REDACTED, mailing_address=REDACTED, channel="x"
    )
    update = preferences_update(_event(erased))
    assert update is not None and update.values == {}
    assert preferences_update(_event(SignedIn.model_construct())) is None


@pytest.mark.obligation("USE-10")
def test_a_control_character_in_a_token_or_address_is_refused_but_line_breaks_are_not() -> None:
    bad = NotificationPreferencesSet.model_construct(
        channels=[NoticeChannel.PUSH], push_token="tok\x1bx", mailing_address=None, channel="x"
    )
    with pytest.raises(UnusableContact):
        preferences_update(_event(bad))
