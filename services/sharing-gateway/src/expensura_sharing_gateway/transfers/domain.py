"""Transfers to a successor (TRF-1) and public disclosure (PUB-1): the evidence each needs.
Pure rules.

Neither keeps state of its own: the event in the log is the record (so this feature has no
store.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from expensura_events.catalog.sharing import PublicDisclosureMade, TransferRecorded
from expensura_events.contracts.decisions import DecisionOut
from expensura_events.envelope import LegalBasis
from expensura_events.obligations import enforces
from expensura_events.vocabulary import PUBLIC_RECIPIENT, LegalGround
from expensura_sharing_gateway.partners.domain import FIELD_CATEGORIES

PUBLIC = PUBLIC_RECIPIENT
NO_CASE = "a public disclosure names the case it is for (case_reference)"
NO_EVIDENCE = (
    "a successor must commit to this policy (commitment_reference) "
    "or consent must be obtained again (reconsent: true)"
)


class TransferReason(StrEnum):
    MERGER = "merger"
    ACQUISITION = "acquisition"
    ASSET_TRANSFER = "asset-transfer"
    BANKRUPTCY = "bankruptcy"


class MissingEvidence(ValueError):
    """TRF-1: neither the successor's commitment nor re-consent."""


class PublicRefused(Exception):
    """PUB-1: neither explicit consent for this request nor a legal mandate."""


@dataclass(frozen=True)
class SuccessorTransfer:
    successor: str
    reason: TransferReason
    commitment_reference: str | None
    reconsent: bool


@enforces("TRF-1")
def check_evidence(commitment_reference: str | None, reconsent: bool) -> None:
    """A transfer needs the successor's commitment to this policy, or re-consent."""
    if commitment_reference is None and not reconsent:
        raise MissingEvidence(NO_EVIDENCE)


@enforces("TRF-1")
def decide_transfer(
    transfer_id: UUID, transfer: SuccessorTransfer
) -> tuple[TransferRecorded, LegalBasis]:
    """The event and its legal basis; without a commitment, every user is asked again."""
    check_evidence(transfer.commitment_reference, transfer.reconsent)
    event = TransferRecorded(
        transfer_id=transfer_id,
        successor=transfer.successor,
        reason=transfer.reason.value,
        commitment_reference=transfer.commitment_reference,
        reconsent_required=transfer.commitment_reference is None,
    )
    basis = LegalBasis(
        ground=LegalGround.OTHER_LAW, reference=transfer.commitment_reference or "re-consent"
    )
    return event, basis


def transfer_stream(transfer_id: UUID) -> str:
    return f"transfer-{transfer_id}"


def public_fields(asked: Iterable[str]) -> list[str]:
    """The known fields among those asked, sorted; none is a refusal."""
    fields = sorted(set(asked) & set(FIELD_CATEGORIES))
    if not fields:
        raise PublicRefused("no known fields requested")
    return fields


@enforces("PUB-1")
def check_case(case_reference: str) -> str:
    """Every public disclosure names the case it is for, so that it can be audited."""
    if not case_reference.strip():
        raise PublicRefused(NO_CASE)
    return case_reference


@enforces("PUB-1", "SEC-2")
def decide_public(
    disclosure_id: UUID, fields: list[str], decision: DecisionOut, case_reference: str
) -> PublicDisclosureMade:
    """Made public only for a case, on the consent service's yes for the recipient `public`:
    the subject's explicit consent for it, or a legal mandate (a ground naming the public,
    which consent counts only once a second officer approved it)."""
    check_case(case_reference)
    if not decision.allowed:
        raise PublicRefused(f"neither explicit consent nor a legal mandate: {decision.reason}")
    return PublicDisclosureMade(
        disclosure_id=disclosure_id,
        fields=fields,
        decision_id=decision.decision_id,
        basis=decision.basis.recorded(),
        case_reference=case_reference,
    )


def public_stream(disclosure_id: UUID) -> str:
    return f"public-{disclosure_id}"
