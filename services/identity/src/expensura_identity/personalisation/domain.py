"""A personalisation profile exists only while the user consents to profiling (USE-5).
Pure: which events start, feed and end a profile."""

from __future__ import annotations

from enum import StrEnum

from expensura_events.catalog.consent import ConsentExpired, ConsentGiven, ConsentWithdrawn
from expensura_events.catalog.identity import SignedIn
from expensura_events.envelope import DomainEvent
from expensura_events.obligations import enforces
from expensura_events.vocabulary import DataCategory, Purpose

# What the profile holds is derived from the user's use of the app (sign-in times).
PROFILE_FIELDS = ("sign_ins", "usual_hour_utc")
PROFILE_CATEGORIES = (DataCategory.DEVICE_BASED.value,)


class NoProfile(Exception):
    """Without consent to personalisation there is none."""


class ProfileChange(StrEnum):
    START = "start"  # consent to personalisation given: an empty profile
    FEED = "feed"  # the user signed in: counted, if a profile exists
    END = "end"  # consent withdrawn or expired: the profile goes, row and all


@enforces("USE-5")
def profile_change(payload: DomainEvent) -> ProfileChange | None:
    """What an event does to the subject's profile, if anything."""
    if isinstance(payload, ConsentGiven) and payload.purpose is Purpose.PERSONALISATION:
        return ProfileChange.START
    if (
        isinstance(payload, ConsentWithdrawn | ConsentExpired)
        and payload.purpose is Purpose.PERSONALISATION
    ):
        return ProfileChange.END
    if isinstance(payload, SignedIn) and payload.principal_kind == "user":
        return ProfileChange.FEED
    return None
