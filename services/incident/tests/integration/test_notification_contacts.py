"""The notification-contacts projection against a real database: it keeps exactly what
the shared contact fold says, event after event, sealed with the subject's key, and the
operator's check shows a keyed digest."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from expensura_events.catalog.identity import AccountOpened
from expensura_events.catalog.identity_notifications import NotificationPreferencesSet
from expensura_events.catalog.identity_profile import ContactDetailsCorrected
from expensura_events.catalog.incident_notices import NoticeChannel
from expensura_events.contacts import current_contact
from expensura_events.envelope import REDACTED, Actor, DomainEvent, EventEnvelope, new_event_id
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import CollectionChannel, Purpose
from expensura_incident.app import service_definition
from expensura_incident.contacts import service
from expensura_incident.contacts.domain import UnknownSubject, email_hmac
from expensura_incident.contacts.projection import NotificationContacts
from expensura_incident.tables import notification_contacts
from expensura_ops.testing.stack import LocalStack


@pytest.fixture(scope="module")
async def provisioned(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    stack = LocalStack(pg_admin_url, kafka_bootstrap, tmp_path_factory.mktemp("incident"))
    await stack.provision()
    try:
        yield stack
    finally:
        await stack.drop()


@pytest.fixture
async def rt(provisioned: LocalStack) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime(service_definition, provisioned.settings("incident"))
    try:
        yield runtime
    finally:
        await runtime.close()


def _event(subject: str, payload: DomainEvent) -> EventEnvelope:
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source="identity",
        stream_id=f"account-{subject}",
        stream_version=0,
        subject_id=subject,
        actor=Actor.system("tests"),
        purpose=Purpose.ACCOUNT_MANAGEMENT,
        correlation_id=new_event_id(),
        payload=payload,
    )


@pytest.mark.obligation("RGT-2", "SEC-1")
async def test_the_row_follows_sign_up_and_corrections_as_the_shared_fold_does(
    rt: ServiceRuntime, provisioned: LocalStack
) -> None:
    subject = str(uuid.uuid4())
    channel = CollectionChannel.PROVIDED_BY_USER
    events = [
        _event(
            subject,
            AccountOpened(
                account_id=uuid.UUID(subject),
                email="ann@example.com",
                phone="+14155550100",
                channel=channel,
            ),
        ),
        _event(subject, ContactDetailsCorrected(email="ann@example.org", channel=channel)),
        # read after erasure of another copy's key: the marker is no address
        _event(subject, ContactDetailsCorrected.model_construct(phone=REDACTED, channel=channel)),
    ]
    projection = NotificationContacts()
    projection.bind(rt)
    for event in events:
        async with rt.engine.begin() as conn:
            await projection.apply(conn, event)
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(notification_contacts).where(notification_contacts.c.subject_id == subject)
            )
        ).one()
    stored = json.dumps(row._asdict(), default=str)
    assert "ann@example" not in stored and "+14155550100" not in stored  # sealed, SEC-1
    assert await service.contacts_of(rt, subject) == current_contact(events).as_values() | {
        "push_token": None,  # no notification preferences yet
        "mailing_address": None,
    }
    assert row.updated_from_event == events[-1].event_id
    check = await service.contact_check(rt, subject)
    key = await service.contact_hmac_key(rt)
    assert check.email_hmac == email_hmac(key, "ann@example.org")
    assert check.phone_present
    assert await service.email_check(rt, subject, "ann@example.org")
    assert not await service.email_check(rt, subject, "ann@example.com")
    with pytest.raises(UnknownSubject):
        await service.contact_check(rt, str(uuid.uuid4()))
    # crypto-shredding reaches this copy: with the key destroyed (by the erasure path, which
    # runs as identity: no other service may destroy a key) nothing opens
    erasure = ServiceRuntime(service_definition, provisioned.settings("identity"))
    try:
        assert await erasure.keys.destroy(subject)
    finally:
        await erasure.close()
    opened = await service.contacts_of(rt, subject)
    assert {opened["email"], opened["phone"]} == {REDACTED}


@pytest.mark.obligation("USE-10", "SEC-1")
async def test_the_row_follows_the_customers_channel_choice_sealing_token_and_address(
    rt: ServiceRuntime, provisioned: LocalStack
) -> None:
    subject = str(uuid.uuid4())
    channel = CollectionChannel.PROVIDED_BY_USER
    address = "Ann Lee\n12 Elm Street\nSpringfield, IL 62704"
    projection = NotificationContacts()
    projection.bind(rt)

    async def apply(payload: DomainEvent) -> None:
        async with rt.engine.begin() as conn:
            await projection.apply(conn, _event(subject, payload))

    await apply(
        AccountOpened(account_id=uuid.UUID(subject), email="ann@example.com", channel=channel)
    )
    assert await service.notice_channels_of(rt, subject) is None  # no choice: default order
    await apply(
        NotificationPreferencesSet(
            channels=[NoticeChannel.LETTER, NoticeChannel.PUSH],
            push_token="device-token-1",
            mailing_address=address,
            channel=channel,
        )
    )
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(notification_contacts).where(notification_contacts.c.subject_id == subject)
            )
        ).one()
    stored = json.dumps(row._asdict(), default=str)
    assert "device-token-1" not in stored and "Elm Street" not in stored  # sealed, SEC-1
    assert await service.notice_channels_of(rt, subject) == [
        NoticeChannel.LETTER,
        NoticeChannel.PUSH,
    ]
    opened = await service.contacts_of(rt, subject)
    assert (opened["push_token"], opened["mailing_address"]) == ("device-token-1", address)
    assert opened["email"] == "ann@example.com"  # the sign-up's contacts stay

    # a later choice replaces the earlier one whole: the token left out is no longer on file;
    # a value that reads as redacted (its key destroyed) sets nothing
    await apply(
        NotificationPreferencesSet.model_construct(
            channels=[NoticeChannel.EMAIL, NoticeChannel.LETTER],
            push_token=None,
            mailing_address=REDACTED,
            channel=channel,
        )
    )
    opened = await service.contacts_of(rt, subject)
    assert (opened["push_token"], opened["mailing_address"]) == (None, address)
    assert await service.notice_channels_of(rt, subject) == [
        NoticeChannel.EMAIL,
        NoticeChannel.LETTER,
    ]
