"""TRF-1 and PUB-1 without I/O: a transfer's evidence, and what a public disclosure needs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from expensura_events.contracts.decisions import Basis, BasisKind, DecisionOut
from expensura_events.vocabulary import LegalGround, Purpose
from expensura_sharing_gateway.transfers.domain import (
    PUBLIC,
    MissingEvidence,
    PublicRefused,
    SuccessorTransfer,
    TransferReason,
    check_case,
    check_evidence,
    decide_public,
    decide_transfer,
    public_fields,
)


@pytest.mark.obligation("TRF-1")
def test_a_transfer_without_commitment_or_reconsent_is_refused() -> None:
    with pytest.raises(MissingEvidence, match="commit to this policy"):
        check_evidence(None, False)
    bare = SuccessorTransfer("Acme Lending Inc.", TransferReason.MERGER, None, False)
    with pytest.raises(MissingEvidence):
        decide_transfer(uuid.uuid4(), bare)


@pytest.mark.obligation("TRF-1")
def test_a_commitment_binds_the_successor_and_without_one_everyone_is_asked_again() -> None:
    bound = SuccessorTransfer("Acme", TransferReason.MERGER, "deed-2026-44 §7", False)
    event, basis = decide_transfer(uuid.uuid4(), bound)
    assert event.reconsent_required is False and event.commitment_reference == "deed-2026-44 §7"
    assert basis.ground is LegalGround.OTHER_LAW and basis.reference == "deed-2026-44 §7"
    # re-consent asked for even when a commitment exists is no reason to ask everyone again
    both = SuccessorTransfer("Acme", TransferReason.ACQUISITION, "deed-1", True)
    assert decide_transfer(uuid.uuid4(), both)[0].reconsent_required is False
    ask = SuccessorTransfer("Acme", TransferReason.BANKRUPTCY, None, True)
    event, basis = decide_transfer(uuid.uuid4(), ask)
    assert event.reconsent_required is True and basis.reference == "re-consent"


def _decision(allowed: bool) -> DecisionOut:
    return DecisionOut(
        decision_id=uuid.uuid4(),
        subject_id="s-1",
        purpose=Purpose.COMMUNICATION,
        recipient=PUBLIC,
        allowed=allowed,
        reason="consent in force" if allowed else "no consent names public",
        basis=Basis(kind=BasisKind.CONSENT, consent_id=uuid.uuid4())
        if allowed
        else Basis(kind=BasisKind.NONE),
        decided_at=datetime.now(UTC),
    )


@pytest.mark.obligation("PUB-1")
def test_public_disclosure_needs_consents_yes_for_public_and_known_fields() -> None:
    with pytest.raises(PublicRefused, match="no known fields"):
        public_fields(["nationality"])
    assert public_fields(["phone", "email", "nationality"]) == ["email", "phone"]
    with pytest.raises(PublicRefused, match="neither explicit consent nor a legal mandate"):
        decide_public(uuid.uuid4(), ["email"], _decision(False), "CASE-1")
    yes = _decision(True)
    made = decide_public(uuid.uuid4(), ["email"], yes, "CASE-1")
    assert made.decision_id == yes.decision_id and made.basis["kind"] == "consent"
    assert made.case_reference == "CASE-1"


@pytest.mark.obligation("PUB-1")
@pytest.mark.parametrize("case", ["", "   "])
def test_public_disclosure_names_its_case_even_with_consents_yes(case: str) -> None:
    with pytest.raises(PublicRefused, match="case_reference"):
        check_case(case)
    with pytest.raises(PublicRefused, match="case_reference"):
        decide_public(uuid.uuid4(), ["email"], _decision(True), case)
