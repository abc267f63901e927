"""The consent decision on the wire (RGT-4): what a caller of consent's
`POST /internal/decisions` sends, and what it and `GET /internal/decisions/{id}` answer.

Consent's routes and every caller (the sharing gateway's disclosures and public
disclosures, identity's release of disclosable values, loans' assessments) use these
models, so the basis of a decision is read one way everywhere: `Basis.legal_basis()`; and
`expensura_events.decisions_client` is the one way a service asks.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field

from expensura_events.envelope import LegalBasis
from expensura_events.fields import FieldName, Identifier
from expensura_events.vocabulary import DataCategory, LegalGround, Purpose


class BasisKind(StrEnum):
    CONSENT = "consent"
    LEGAL_GROUND = "legal-ground"
    NONE = "none"


class NoLegalBasis(ValueError):
    """The decision names no consent and no legal ground (it did not allow anything)."""


class DecisionRequest(BaseModel):
    """May the subject's data of these categories be used for the purpose (and disclosed
    to the recipient)? `requester` is the asking service."""

    subject_id: Identifier
    purpose: Purpose
    categories: Annotated[list[DataCategory], Field(min_length=1, max_length=20)]
    recipient: Identifier | None = None
    # The exact fields a disclosure will release: a decision with them is a grant identity
    # may redeem for those fields only; one without them releases nothing.
    fields: Annotated[list[FieldName], Field(max_length=20)] | None = None
    requester: Identifier


RELEASE_WITHIN_SECONDS = 10
"""A decision is a grant to release values once, within this many seconds of being made."""


class ReleaseRequest(BaseModel):
    """Identity redeeming a decision before it releases values (`POST
    /internal/decisions/{id}/release`): the subject, recipient and categories it is about to
    release, which must be those decided, no wider. Consent re-checks the decision now."""

    subject_id: Identifier
    recipient: Identifier
    categories: Annotated[list[DataCategory], Field(min_length=1, max_length=20)]
    fields: Annotated[list[FieldName], Field(min_length=1, max_length=20)]


class Basis(BaseModel):
    """What a decision rests on: a consent record, a legal-ground invocation, or nothing."""

    kind: BasisKind
    consent_id: UUID | None = None
    invocation_id: UUID | None = None
    ground: LegalGround | None = None
    # Only in the as-of view an auditor reads; a decision's answer leaves it out (the
    # evidence is free text about the subject's case, sealed at consent).
    evidence_reference: str | None = None

    def recorded(self) -> dict[str, Any]:
        """The basis as a disclosure's event records it: without the evidence's text, which
        stays sealed in the invocation's own event."""
        return self.model_dump(mode="json", exclude={"evidence_reference"})

    def legal_basis(self) -> LegalBasis:
        """The basis as events record it: the consent (its id as the reference) or the
        invoked ground (its invocation as the reference: the evidence is free text about the
        subject's case, and an envelope's basis is never sealed)."""
        if self.kind is BasisKind.CONSENT and self.consent_id is not None:
            return LegalBasis(ground=LegalGround.CONSENT, reference=str(self.consent_id))
        if self.kind is BasisKind.LEGAL_GROUND and self.ground is not None:
            reference = None if self.invocation_id is None else f"invocation:{self.invocation_id}"
            return LegalBasis(ground=self.ground, reference=reference)
        raise NoLegalBasis(f"a decision with basis {self.kind.value!r} has no legal basis")


class DecisionOut(BaseModel):
    decision_id: UUID
    subject_id: str
    purpose: Purpose
    recipient: str | None
    allowed: bool
    reason: str
    basis: Basis
    decided_at: datetime
