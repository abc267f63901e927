"""The consent decision's wire model: one parser of its basis for every caller."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from expensura_events.contracts.decisions import (
    Basis,
    BasisKind,
    DecisionOut,
    DecisionRequest,
    NoLegalBasis,
)
from expensura_events.envelope import LegalBasis
from expensura_events.vocabulary import DataCategory, LegalGround, Purpose

CONSENT_ID = "0b4d1c4e-5f1a-4f7e-9a53-2a0f3f6f9d11"
INVOCATION_ID = "7d1f0a2b-8c3d-4e5f-9a6b-1c2d3e4f5a6b"


def test_a_consent_basis_is_the_consent_with_its_id_as_reference() -> None:
    basis = Basis.model_validate(
        {
            "kind": "consent",
            "consent_id": CONSENT_ID,
            "invocation_id": None,
            "ground": None,
            "evidence_reference": None,
        }
    )
    assert basis.legal_basis() == LegalBasis(ground=LegalGround.CONSENT, reference=CONSENT_ID)


@pytest.mark.parametrize("ground", [g for g in LegalGround if g is not LegalGround.CONSENT])
def test_a_legal_ground_basis_is_the_ground_with_its_invocation_never_its_evidence(
    ground: LegalGround,
) -> None:
    basis = Basis.model_validate(
        {
            "kind": "legal-ground",
            "consent_id": None,
            "invocation_id": INVOCATION_ID,
            "ground": ground.value,
            "evidence_reference": "sha256:court-order",
        }
    )
    # the evidence is free text about the subject's case: it travels sealed in the
    # invocation's event, never in an envelope's basis or a disclosure's record (SEC-1)
    assert basis.legal_basis() == LegalBasis(ground=ground, reference=f"invocation:{INVOCATION_ID}")
    assert "evidence_reference" not in basis.recorded()
    assert basis.recorded()["invocation_id"] == str(INVOCATION_ID)


def test_a_ground_without_evidence_has_no_reference_not_the_word_none() -> None:
    basis = Basis(kind=BasisKind.LEGAL_GROUND, ground=LegalGround.VITAL_INTERESTS)
    assert basis.legal_basis() == LegalBasis(ground=LegalGround.VITAL_INTERESTS, reference=None)


@pytest.mark.parametrize(
    "basis",
    [
        Basis(kind=BasisKind.NONE),
        Basis(kind=BasisKind.CONSENT),  # a consent basis that names no consent
        Basis(kind=BasisKind.LEGAL_GROUND, invocation_id=uuid.UUID(INVOCATION_ID)),
    ],
    ids=["none", "consent-without-id", "ground-without-ground"],
)
def test_a_basis_naming_nothing_has_no_legal_basis(basis: Basis) -> None:
    with pytest.raises(NoLegalBasis):
        basis.legal_basis()


@pytest.mark.parametrize(
    "bad",
    [{"kind": "maybe"}, {"kind": "legal-ground", "ground": "because"}],
    ids=["unknown-kind", "unknown-ground"],
)
def test_an_unknown_kind_or_ground_is_refused_not_guessed(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Basis.model_validate(bad)


def test_the_json_on_the_wire_is_read_and_written_unchanged() -> None:
    wire = {
        "decision_id": str(uuid.uuid4()),
        "subject_id": "s-1",
        "purpose": Purpose.DISPUTE_RESOLUTION.value,
        "recipient": "partner-1",
        "allowed": True,
        "reason": "consent given",
        "basis": {
            "kind": "legal-ground",
            "consent_id": None,
            "invocation_id": INVOCATION_ID,
            "ground": "criminal-investigation",
            "evidence_reference": "case 42",
        },
        "decided_at": "2026-11-26T10:00:00Z",
    }
    decision = DecisionOut.model_validate(wire)
    assert decision.decided_at == datetime(2026, 11, 26, 10, tzinfo=UTC)
    again = decision.model_dump(mode="json")
    assert again == wire | {"decided_at": again["decided_at"]}
    assert datetime.fromisoformat(again["decided_at"]) == decision.decided_at


def test_a_request_is_sent_with_the_field_names_consent_expects() -> None:
    request = DecisionRequest(
        subject_id="s-1",
        purpose=Purpose.MARKETING,
        categories=[DataCategory.CONTACT],
        recipient=None,
        requester="sharing-gateway",
    )
    assert request.model_dump(mode="json") == {
        "subject_id": "s-1",
        "purpose": Purpose.MARKETING.value,
        "categories": [DataCategory.CONTACT.value],
        "recipient": None,
        "fields": None,
        "requester": "sharing-gateway",
    }
    with pytest.raises(ValidationError):
        DecisionRequest.model_validate(request.model_dump() | {"categories": []})
    with pytest.raises(ValidationError):  # field names are names, not text
        DecisionRequest.model_validate(request.model_dump() | {"fields": ["e-mail; drop"]})
