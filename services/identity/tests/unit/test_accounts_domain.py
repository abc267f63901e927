"""Account rules in memory: sign-up details, finding an account without its address, and
the release of contact details on a live decision."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from expensura_events.contracts.decisions import Basis, BasisKind, DecisionOut
from expensura_events.vocabulary import CollectionChannel, Purpose
from expensura_identity.accounts.domain import (
    InvalidAccountDetails,
    OpenAccount,
    ReleaseRefused,
    account_stream,
    check_release,
    checked_contact,
    email_lookup,
    lookup_key,
    open_account,
    releasable,
)

LOOKUP_SECRET = b"look-up secret for unit tests!!!!"  # identity's lookup-hmac secret


def test_sign_up_records_the_normalised_address_and_how_it_was_collected() -> None:
    account = uuid.uuid4()
    event = open_account(OpenAccount(account, "  Ann@Example.COM ", "+14155550100"))
    assert (event.account_id, event.email, event.phone) == (
        account,
        "ann@example.com",
        "+14155550100",
    )
    assert event.channel is CollectionChannel.PROVIDED_BY_USER
    assert account_stream(account) == f"account-{account}"


@pytest.mark.parametrize(
    ("email", "phone"),
    [("not-an-address", None), ("a@b", None), ("ann@example.com", "555-0100"), (None, "+0123")],
)
def test_malformed_contact_details_are_refused(email: str | None, phone: str | None) -> None:
    with pytest.raises(InvalidAccountDetails):
        checked_contact(email, phone)


def test_either_detail_may_be_given_alone() -> None:
    assert checked_contact(None, "+14155550100") == (None, "+14155550100")
    assert checked_contact("Ann@Example.com", None) == ("ann@example.com", None)


def test_the_lookup_is_a_keyed_hash_per_purpose_of_the_normalised_address() -> None:
    found = email_lookup(LOOKUP_SECRET, "Ann@Example.com")
    assert found == email_lookup(LOOKUP_SECRET, " ann@example.com")
    other = b"another look-up secret, 32 bytes"
    assert found != email_lookup(other, "ann@example.com")  # without the key, nothing
    assert found != lookup_key(LOOKUP_SECRET, "client", "ann@example.com")
    assert b"ann" not in found and len(found) == 32


def _decision(**overrides: object) -> DecisionOut:
    fields: dict[str, object] = {
        "decision_id": uuid.uuid4(),
        "subject_id": "subject-1",
        "purpose": Purpose.DISPUTE_RESOLUTION,
        "recipient": "court-1",
        "allowed": True,
        "reason": "consent",
        "basis": Basis(kind=BasisKind.CONSENT, consent_id=uuid.uuid4()),
        "decided_at": datetime(2026, 11, 26, tzinfo=UTC),
    }
    return DecisionOut.model_validate(fields | overrides)


@pytest.mark.obligation("SHR-1")
def test_a_release_needs_the_decision_to_allow_exactly_this_subject_and_recipient() -> None:
    check_release(_decision(), "subject-1", "court-1")
    for decision, subject, recipient in [
        (_decision(allowed=False), "subject-1", "court-1"),
        (_decision(), "subject-2", "court-1"),
        (_decision(), "subject-1", "court-2"),
        (_decision(recipient=None), "subject-1", "court-1"),
    ]:
        with pytest.raises(ReleaseRefused):
            check_release(decision, subject, recipient)


def test_only_contact_fields_are_released_and_in_the_order_asked() -> None:
    assert releasable(["phone", "password_hash", "email", "id_number"]) == ["phone", "email"]
    assert releasable([]) == []
