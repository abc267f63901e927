"""The one question every service asks before it uses or discloses personal data (RGT-4),
and the as-of answer folded from the log. Pure: no framework, no database.

`decide` is given everything it relies on: the subject's consent records and legal-ground
invocations for the purpose, and the subject's restriction (RUL-2). Whoever calls it must
hold those records still until the decision is recorded (the service locks them), so that
a withdrawal acknowledged before the decision is always seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from expensura_consent.grounds.domain import (
    GROUND_READ_CATEGORIES,
    GROUND_READ_FIELDS,
    GroundRecord,
)
from expensura_consent.purposes import domain as purposes
from expensura_consent.records.domain import ConsentRecord, ConsentStatus, valid_at
from expensura_events.catalog.consent import (
    ConsentExpired,
    ConsentGiven,
    ConsentWithdrawn,
    LegalGroundInvocationApproved,
    LegalGroundInvocationRejected,
    LegalGroundInvocationRequested,
    LegalGroundInvoked,
    LegalGroundRevoked,
)
from expensura_events.contracts.decisions import RELEASE_WITHIN_SECONDS
from expensura_events.envelope import EventEnvelope
from expensura_events.four_eyes import Approval
from expensura_events.obligations import enforces
from expensura_events.privacy.restriction_rules import Restriction, permits
from expensura_events.vocabulary import CollectionChannel, Purpose

NO_BASIS = "no valid consent and no legal ground"
ASK_AGAIN = "the purpose changed since consent was given: ask again"
NO_CATEGORIES = "name at least one data category"
RELEASE_WITHIN = timedelta(seconds=RELEASE_WITHIN_SECONDS)


# What each service may ask consent about (least privilege: a compromised service learns
# and gets no more). The sharing gateway discloses to partners, so it asks about any purpose
# and may ask for a grant of fields; loans asks only whether it may assess an applicant's
# credit, and never for a grant (it releases nothing through identity).
ASKS: dict[str, tuple[frozenset[Purpose] | None, bool]] = {
    "sharing-gateway": (None, True),
    "loans": (frozenset({Purpose.CREDIT_ASSESSMENT}), False),
}


class NotAskable(Exception):
    """The requester may not ask this (another purpose than its own, or a grant)."""


@enforces("RGT-4")
def check_askable(requester: str, purpose: Purpose, wants_grant: bool) -> None:
    purposes, grants = ASKS.get(requester, (frozenset(), False))
    if purposes is not None and purpose not in purposes:
        raise NotAskable(f"{requester} may not ask about {purpose.value}")
    if wants_grant and not grants:
        raise NotAskable(f"{requester} may not ask for a grant of fields")


class DecisionNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    consent_id: UUID | None = None
    ground: GroundRecord | None = None


class ReleaseRefused(Exception):
    """The decision cannot be redeemed for this release: nothing may leave."""


@dataclass(frozen=True)
class Grant:
    """A recorded decision as a grant to release values: what it was decided for, and
    whether it was redeemed already."""

    decision_id: UUID
    subject_id: str
    purpose: Purpose
    recipient: str | None
    categories: frozenset[str]
    fields: frozenset[str] | None
    allowed: bool
    decided_at: datetime
    released_at: datetime | None


@enforces("SHR-1", "RGT-4")
def check_redemption(
    grant: Grant | None,
    subject_id: str,
    recipient: str,
    categories: set[str],
    fields: set[str],
    now: datetime,
) -> Grant:
    """A decision releases values once, within RELEASE_WITHIN of being made, for exactly
    the subject and recipient it was made for and no more fields or categories than it
    named. (Whether consent still allows it now is decided again by the caller.)"""
    if grant is None:
        raise ReleaseRefused("no such decision")
    if not grant.allowed:
        raise ReleaseRefused("the decision did not allow it")
    if grant.released_at is not None:
        raise ReleaseRefused("the decision was already released once")
    if now - grant.decided_at > RELEASE_WITHIN:
        raise ReleaseRefused(f"the grant expired ({RELEASE_WITHIN_SECONDS} s after the decision)")
    if grant.subject_id != subject_id or grant.recipient != recipient:
        raise ReleaseRefused("the decision is for another subject or recipient")
    if grant.fields is None:
        raise ReleaseRefused("the decision named no fields to release")
    if not fields <= grant.fields or not categories <= grant.categories:
        raise ReleaseRefused("wider than decided: more fields or categories than the decision")
    return grant


# A staff read of a subject's consent and legal state (SEC-3): what it shows, named in the
# `platform.PersonalDataAccessed` it records (why: grounds' `STAFF_READ_PURPOSE`).
BASIS_FIELDS = ("consent-records", *GROUND_READ_FIELDS)
BASIS_CATEGORIES = GROUND_READ_CATEGORIES


@dataclass(frozen=True)
class AsOf:
    """What was in effect at an instant: a consent or a ground, and the event that began it."""

    consent_id: UUID | None
    ground: GroundRecord | None
    from_event: UUID


@enforces("RGT-4", "RUL-1", "RUL-2", "RUL-4", "USE-7", "USE-11")
def decide(
    purpose: Purpose,
    categories: set[str],
    recipient: str | None,
    now: datetime,
    consents: list[ConsentRecord],
    grounds: list[GroundRecord],
    restriction: Restriction | None = None,
) -> Decision:
    """May these categories be used for this purpose (and disclosed to this recipient)?

    A valid consent covering them (of the purpose's version still in force) allows; failing
    that, a legal ground in effect covering them; nothing else. A subject whose processing
    stopped (`restriction`) is refused whatever allows, but for the law's own purposes."""
    decision = _basis(purpose, categories, recipient, now, consents, grounds)
    if decision.allowed and not permits(restriction, purpose):
        # account cancellation stops every use but the law's (RUL-2)
        return Decision(False, f"processing stopped: the subject's account is {restriction}")
    return decision


def _basis(
    purpose: Purpose,
    categories: set[str],
    recipient: str | None,
    now: datetime,
    consents: list[ConsentRecord],
    grounds: list[GroundRecord],
) -> Decision:
    if not categories:
        return Decision(False, NO_CATEGORIES)
    if (why := purposes.refusal(purpose, categories)) is not None:
        return Decision(False, why)
    stale = False
    for record in consents:
        if record.purpose != purpose or not valid_at(record, now):
            continue
        if not categories <= record.categories:
            continue
        if recipient is not None and recipient not in record.recipients:
            continue
        if not purposes.consent_still_covers(purpose, record.purpose_version):
            stale = True  # the purpose widened since: fresh consent first (RUL-4)
            continue
        return Decision(True, "consent", consent_id=record.consent_id)
    for ground in grounds:
        if ground.in_effect_at(now) and ground.covers(purpose, categories, recipient):
            return Decision(True, f"legal ground: {ground.ground.value}", ground=ground)
    if stale:
        return Decision(False, ASK_AGAIN)
    return Decision(False, NO_BASIS)


def _given(event: EventEnvelope, given: ConsentGiven) -> ConsentRecord:
    """The record a `ConsentGiven` made (its state until a later event changed it)."""
    return ConsentRecord(
        consent_id=given.consent_id,
        subject_id=event.subject_id or "",
        purpose=given.purpose,
        purpose_version=given.purpose_version,
        categories=frozenset(given.categories),
        recipients=frozenset(given.recipients),
        status=ConsentStatus.GIVEN,
        expires_at=given.expires_at,
        policy_version=given.policy_version,
        channel=CollectionChannel(given.channel),
        given_at=event.occurred_at,
    )


def _invoked(
    event: EventEnvelope, invoked: LegalGroundInvoked | LegalGroundInvocationRequested
) -> GroundRecord:
    return GroundRecord(
        invocation_id=invoked.invocation_id,
        subject_id=event.subject_id or "",
        purpose=invoked.purpose,
        ground=invoked.ground,
        categories=frozenset(invoked.categories),
        recipients=frozenset(invoked.recipients),
        expires_at=invoked.expires_at,
        revoked=False,
        evidence_reference=invoked.evidence_reference,
        reason=invoked.reason,
        created_at=event.occurred_at,
    )


@enforces("RGT-4")
def basis_as_of(events: Iterable[EventEnvelope], purpose: Purpose, at: datetime) -> AsOf | None:
    """The consent (preferred) or ground in effect at `at`, from the subject's events up to
    then; validity is the same test decisions apply to the tables. A requested ground counts
    from its approval, never before (four eyes)."""
    consents: dict[UUID, tuple[ConsentRecord, UUID]] = {}
    grounds: dict[UUID, tuple[GroundRecord, UUID]] = {}
    pending: dict[UUID, GroundRecord] = {}
    # log order; records not yet sequenced (no position) after, in the order given
    for event in sorted(events, key=lambda e: (e.sequence is None, e.sequence or 0)):
        if event.recorded_at is not None and event.recorded_at > at:
            break
        p = event.payload
        if isinstance(p, ConsentGiven) and p.purpose == purpose:
            consents[p.consent_id] = (_given(event, p), event.event_id)
        elif isinstance(p, ConsentWithdrawn | ConsentExpired):
            consents.pop(p.consent_id, None)
        elif isinstance(p, LegalGroundInvoked) and p.purpose == purpose:
            grounds[p.invocation_id] = (_invoked(event, p), event.event_id)
        elif isinstance(p, LegalGroundInvocationRequested) and p.purpose == purpose:
            pending[p.invocation_id] = _invoked(event, p)
        elif isinstance(p, LegalGroundInvocationApproved) and p.invocation_id in pending:
            approved = replace(pending.pop(p.invocation_id), approval=Approval.APPROVED)
            grounds[p.invocation_id] = (approved, event.event_id)
        elif isinstance(p, LegalGroundInvocationRejected):
            pending.pop(p.invocation_id, None)
        elif isinstance(p, LegalGroundRevoked):
            grounds.pop(p.invocation_id, None)
            pending.pop(p.invocation_id, None)
    for record, event_id in consents.values():
        if valid_at(record, at):
            return AsOf(record.consent_id, None, event_id)
    for ground, event_id in grounds.values():
        if ground.in_effect_at(at):
            return AsOf(None, ground, event_id)
    return None
