"""Profile rules in memory: corrections, the IDFA only with tracking permission, anonymous
interactions, and the personalisation profile's life."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from expensura_events.catalog.consent import ConsentExpired, ConsentGiven, ConsentWithdrawn
from expensura_events.catalog.identity import SignedIn, SignedOut
from expensura_events.vocabulary import CollectionChannel, DataCategory, Purpose
from expensura_identity.accounts.domain import InvalidAccountDetails
from expensura_identity.personalisation.domain import ProfileChange, profile_change
from expensura_identity.profile.domain import (
    IDENTIFIERS,
    TrackingNotAllowed,
    anonymise,
    check_device,
    correction,
)

IDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC"


@pytest.mark.obligation("RGT-2")
def test_a_correction_carries_the_normalised_values_given_and_nothing_else() -> None:
    event = correction(" Ann@Example.ORG", None)
    assert (event.email, event.phone) == ("ann@example.org", None)
    assert event.channel is CollectionChannel.PROVIDED_BY_USER
    assert correction(None, "+14155550188").phone == "+14155550188"
    with pytest.raises(InvalidAccountDetails, match="send an email or a phone"):
        correction(None, None)
    with pytest.raises(InvalidAccountDetails):
        correction(None, "555-0100")


@pytest.mark.obligation("COL-1")
def test_an_idfa_needs_tracking_permission() -> None:
    check_device(tracking_allowed=True, idfa=IDFA)
    check_device(tracking_allowed=False, idfa=None)
    check_device(tracking_allowed=True, idfa=None)
    with pytest.raises(TrackingNotAllowed):
        check_device(tracking_allowed=False, idfa=IDFA)


@pytest.mark.obligation("COL-3")
def test_an_interaction_keeps_what_and_where_at_hour_precision_and_no_identifier() -> None:
    at = datetime(2026, 11, 26, 14, 37, 12, 345, tzinfo=UTC)
    raw = {"type": "click", "screen": "loan/offer", "element": "apply", "occurred_at": at}
    raw |= {name: f"value-of-{name}" for name in IDENTIFIERS} | {"anything_else": "x"}
    kept = anonymise(raw)
    assert kept == {
        "type": "click",
        "screen": "loan/offer",
        "element": "apply",
        "hour": datetime(2026, 11, 26, 14, tzinfo=UTC),
    }
    assert not any("value-of" in str(v) for v in kept.values())


@pytest.mark.obligation("COL-3")
def test_an_interaction_without_an_element_keeps_none() -> None:
    at = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    kept = anonymise({"type": "page_view", "screen": "home", "occurred_at": at})
    assert kept == {"type": "page_view", "screen": "home", "element": None, "hour": at}


@pytest.mark.obligation("USE-5")
def test_only_consent_to_personalisation_starts_and_ends_a_profile() -> None:
    consent = uuid.uuid4()

    def given_for(purpose: Purpose) -> ConsentGiven:
        return ConsentGiven(
            consent_id=consent,
            purpose=purpose,
            purpose_version=1,
            categories=[DataCategory.DEVICE_BASED],
            policy_version="1",
            channel=CollectionChannel.PROVIDED_BY_USER,
        )

    given, other = given_for(Purpose.PERSONALISATION), given_for(Purpose.MARKETING)
    withdrawn = ConsentWithdrawn(consent_id=consent, purpose=Purpose.PERSONALISATION)
    expired = ConsentExpired(consent_id=consent, purpose=Purpose.PERSONALISATION)
    assert profile_change(given) is ProfileChange.START
    assert profile_change(other) is None
    assert profile_change(withdrawn) is ProfileChange.END
    assert profile_change(expired) is ProfileChange.END
    user = SignedIn(principal_kind="user", session_id=uuid.uuid4(), methods=["pwd"])
    staff = SignedIn(principal_kind="staff", session_id=uuid.uuid4(), methods=["pwd", "otp"])
    assert profile_change(user) is ProfileChange.FEED
    assert profile_change(staff) is None
    assert profile_change(SignedOut(session_id=uuid.uuid4())) is None
