"""Processing without consent on one of USE-11's ten grounds: what an invocation must name,
when one is in effect, and its events. Pure: no framework, no database.

    active ──(an officer revokes it)──▶ revoked
      └──(its expiry passes: no event, it simply stops counting)

Revoking a revoked invocation changes nothing and records nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from expensura_consent.purposes import domain as purposes
from expensura_events.catalog.consent import LegalGroundInvoked, LegalGroundRevoked
from expensura_events.envelope import LegalBasis
from expensura_events.obligations import enforces
from expensura_events.vocabulary import LegalGround, Purpose

# Input limits: what one invocation may name.
MAX_CATEGORIES = 20
MAX_RECIPIENTS = 20
MIN_EVIDENCE_LENGTH = 3
MIN_REASON_LENGTH = 3
REVOKED_BY_OFFICER = "revoked by officer"


class GroundState(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class GroundAction(StrEnum):
    REVOKE = "revoke"


TRANSITIONS: Mapping[tuple[GroundState, GroundAction], GroundState] = {
    (GroundState.ACTIVE, GroundAction.REVOKE): GroundState.REVOKED,
}


class Grouping(StrEnum):
    """How the report counts invocations."""

    GROUND = "ground"
    REQUESTER = "requester"


class InvalidInvocation(ValueError):
    """The invocation cannot be recorded; nothing was."""


class InvocationNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Invocation:
    """What an officer asks for: a ground, its evidence and reason, its scope and expiry."""

    subject_id: str
    purpose: Purpose
    ground: LegalGround
    evidence_reference: str
    categories: frozenset[str]
    recipients: frozenset[str]
    reason: str
    expires_at: datetime


@dataclass(frozen=True)
class GroundRecord:
    invocation_id: UUID
    subject_id: str
    purpose: Purpose
    ground: LegalGround
    categories: frozenset[str]
    recipients: frozenset[str]
    expires_at: datetime
    revoked: bool
    evidence_reference: str
    reason: str = ""
    invoked_by: str = ""
    created_at: datetime | None = None

    @property
    def state(self) -> GroundState:
        return GroundState.REVOKED if self.revoked else GroundState.ACTIVE

    def in_effect_at(self, now: datetime) -> bool:
        """Whether the invocation counts at `now`: not revoked, not expired. The one test of
        a ground's validity (decisions and the as-of fold both ask it)."""
        return not self.revoked and self.expires_at > now

    def covers(self, purpose: Purpose, categories: set[str], recipient: str | None) -> bool:
        return (
            self.purpose == purpose
            and categories <= self.categories
            and (recipient is None or recipient in self.recipients)
        )


def ground_stream(invocation_id: UUID) -> str:
    """One invocation: invoked, then perhaps revoked."""
    return f"ground-{invocation_id}"


def basis(ground: LegalGround, invocation_id: UUID) -> LegalBasis:
    """The basis events record: the ground and the invocation that holds its evidence. The
    evidence itself is free text about the subject's case and travels only sealed, in the
    invocation's own event (SEC-1); an envelope's basis is never sealed."""
    return LegalBasis(ground=ground, reference=f"invocation:{invocation_id}")


@enforces("USE-11")
def check_ground(ground: LegalGround) -> LegalGround:
    """Consent is the subject's to give, never an officer's to invoke."""
    if ground is LegalGround.CONSENT:
        raise InvalidInvocation("consent is given by the subject, not invoked")
    return ground


@enforces("USE-11")
def invoke(invocation_id: UUID, invocation: Invocation, now: datetime) -> LegalGroundInvoked:
    """The event that records the invocation. Raises InvalidInvocation."""
    check_ground(invocation.ground)
    if invocation.expires_at <= now:
        raise InvalidInvocation("expires_at must be in the future")
    if len(invocation.evidence_reference) < MIN_EVIDENCE_LENGTH:
        raise InvalidInvocation("name the evidence (e.g. the hash of a court order)")
    if len(invocation.reason) < MIN_REASON_LENGTH:
        raise InvalidInvocation("say why")
    if not invocation.categories:
        raise InvalidInvocation("name at least one data category")
    if len(invocation.categories) > MAX_CATEGORIES or len(invocation.recipients) > MAX_RECIPIENTS:
        raise InvalidInvocation(f"name at most {MAX_CATEGORIES} categories and recipients each")
    if (why := purposes.refusal(invocation.purpose, set(invocation.categories))) is not None:
        raise InvalidInvocation(why)
    return LegalGroundInvoked(
        invocation_id=invocation_id,
        purpose=invocation.purpose,
        ground=invocation.ground,
        evidence_reference=invocation.evidence_reference,
        categories=sorted(invocation.categories),
        recipients=sorted(invocation.recipients),
        reason=invocation.reason,
        expires_at=invocation.expires_at,
    )


def revoke(record: GroundRecord) -> LegalGroundRevoked | None:
    """The revocation's event; None when it is revoked already (nothing to record)."""
    if (record.state, GroundAction.REVOKE) not in TRANSITIONS:
        return None
    return LegalGroundRevoked(invocation_id=record.invocation_id, reason=REVOKED_BY_OFFICER)


def count(records: Iterable[GroundRecord], by: Grouping) -> dict[str, int]:
    """Invocations per ground, or per who invoked them."""
    return dict(Counter(r.ground.value if by is Grouping.GROUND else r.invoked_by for r in records))
