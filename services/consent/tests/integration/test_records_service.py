"""Consent records against consent's real database (no HTTP): a consent and its event
commit together or not at all, withdrawal and expiry follow the state machine, erasure."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from expensura_consent.erasure import erase_consent_state
from expensura_consent.recipients.domain import UnknownRecipients
from expensura_consent.records import service as records
from expensura_consent.records.domain import (
    ConsentChoice,
    ConsentNotFound,
    ConsentStatus,
    InvalidConsent,
    NotActive,
)
from expensura_events.envelope import utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import PUBLIC_RECIPIENT, Purpose

from .conftest import MARKETING, given, logged, new_subject


@pytest.mark.obligation("USE-7")
async def test_a_consent_is_recorded_with_its_event(rt: ServiceRuntime) -> None:
    subject = new_subject()
    record = await given(rt, subject)
    assert record.status is ConsentStatus.GIVEN and record.purpose_version == 1
    assert await records.consents(rt, subject) == [record]
    assert await logged(rt, subject) == [("consent.ConsentGiven", f"consent-{record.consent_id}")]
    refused = await given(rt, subject, ConsentChoice(**{**MARKETING.__dict__, "given": False}))
    assert refused.status is ConsentStatus.REFUSED
    assert (await logged(rt, subject))[-1] == (
        "consent.ConsentRefused",
        f"consent-{refused.consent_id}",
    )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"policy_version": "never-published-7"}, InvalidConsent),
        ({"categories": frozenset()}, InvalidConsent),
        ({"categories": frozenset({"pd:OfficialID"})}, InvalidConsent),
        ({"expires_at": utcnow() - timedelta(seconds=1)}, InvalidConsent),
        (
            {
                "purpose": Purpose.CREDIT_ASSESSMENT,
                "categories": frozenset({"pd:CreditRecord"}),
            },
            InvalidConsent,
        ),
        (
            {
                "purpose": Purpose.CREDIT_ASSESSMENT,
                "categories": frozenset({"pd:CreditRecord"}),
                "recipients": frozenset({"no-such-partner"}),
            },
            UnknownRecipients,
        ),
    ],
)
async def test_an_invalid_consent_records_nothing_whoever_asks(
    rt: ServiceRuntime, change: dict[str, object], error: type[Exception]
) -> None:
    subject = new_subject()
    with pytest.raises(error):
        await records.give(rt, subject, ConsentChoice(**{**MARKETING.__dict__, **change}))  # type: ignore[arg-type]
    assert await records.consents(rt, subject) == []
    assert await logged(rt, subject) == []


async def test_the_public_is_a_recipient_without_registration(rt: ServiceRuntime) -> None:
    public = ConsentChoice(
        purpose=Purpose.COMMUNICATION,
        categories=frozenset({"pd:Contact"}),
        recipients=frozenset({PUBLIC_RECIPIENT}),
        policy_version=MARKETING.policy_version,
    )
    assert (await given(rt, new_subject(), public)).recipients == {PUBLIC_RECIPIENT}


@pytest.mark.obligation("RGT-4")
async def test_a_withdrawal_is_the_owners_and_happens_once(rt: ServiceRuntime) -> None:
    owner, other = new_subject(), new_subject()
    record = await given(rt, owner)
    with pytest.raises(ConsentNotFound):
        await records.withdraw_consent(rt, other, record.consent_id)
    with pytest.raises(ConsentNotFound):
        await records.withdraw_consent(rt, owner, uuid.uuid4())
    withdrawn = await records.withdraw_consent(rt, owner, record.consent_id)
    assert withdrawn.status is ConsentStatus.WITHDRAWN
    with pytest.raises(NotActive):
        await records.withdraw_consent(rt, owner, record.consent_id)
    assert [t for t, _ in await logged(rt, owner)] == [
        "consent.ConsentGiven",
        "consent.ConsentWithdrawn",
    ]


@pytest.mark.obligation("RGT-4")
async def test_a_consent_past_its_expiry_expires_once_in_the_table_and_the_log(
    rt: ServiceRuntime,
) -> None:
    subject = new_subject()
    soon = utcnow() + timedelta(milliseconds=300)
    record = await given(rt, subject, ConsentChoice(**{**MARKETING.__dict__, "expires_at": soon}))
    while utcnow() <= soon:
        await records.expire_due(rt)  # not yet: nothing to expire for this subject
        assert (await records.consents(rt, subject))[0].status is ConsentStatus.GIVEN
    assert await records.expire_due(rt) >= 1
    assert (await records.consents(rt, subject))[0].status is ConsentStatus.EXPIRED
    await records.expire_due(rt)
    assert [t for t, _ in await logged(rt, subject)] == [
        "consent.ConsentGiven",
        "consent.ConsentExpired",
    ]
    with pytest.raises(NotActive):
        await records.withdraw_consent(rt, subject, record.consent_id)


async def test_a_receipt_is_signed_and_verifies_and_a_forgery_does_not(
    rt: ServiceRuntime,
) -> None:
    subject = new_subject()
    record = await given(rt, subject)
    receipt = await records.receipt(rt, subject, record.consent_id)
    assert receipt.claims["consent_id"] == str(record.consent_id)
    assert receipt.claims["consent_status"] == "dpv:ConsentGiven"
    assert receipt.claims["collection_method"] == "provided-by-user"
    assert await records.verify_receipt(rt, receipt.token) == receipt.claims
    head, body, sig = receipt.token.split(".")
    with pytest.raises(records.InvalidReceipt):
        await records.verify_receipt(rt, f"{head}.{body[:-2]}AA.{sig}")
    with pytest.raises(ConsentNotFound):
        await records.receipt(rt, new_subject(), record.consent_id)


async def test_erasure_removes_the_subjects_choices_only(rt: ServiceRuntime) -> None:
    erased, kept = new_subject(), new_subject()
    for subject in (erased, kept, erased):
        await given(rt, subject)
    async with rt.engine.begin() as conn:
        purged = await erase_consent_state(conn, erased)
    assert purged["consent_records"] == 2
    assert await records.consents(rt, erased) == []
    assert len(await records.consents(rt, kept)) == 1
