"""Disclosures to partners and data from them: the rules, pure.

SHR-1: data leaves only on a decision that names one of the permitted cases (a consent
naming the partner, or a legal ground), and every answer, yes or no, is recorded.
SHR-2: a disclosure carries asked ∩ allow-list(kind, purpose) ∩ agreement, nothing else.
SHR-3: without an agreement in force covering the purpose, nothing.
USE-8: a dispute or legal request names its case; a dispute's case is one its subject opened.
COL-4: data a partner offers is accepted only on consent and an inbound agreement.
RGT-4: the proof, from the logs, that nothing went out under a consent after its withdrawal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from expensura_events.catalog.sharing import (
    DisclosureMade,
    DisclosureRefused,
    InboundDataAccepted,
    InboundDataRefused,
)
from expensura_events.contracts.decisions import DecisionOut
from expensura_events.obligations import enforces
from expensura_events.vocabulary import CollectionChannel, DataCategory, Purpose
from expensura_sharing_gateway.partner_auth.domain import Partner
from expensura_sharing_gateway.partners.domain import (
    Agreement,
    PartnerKind,
    allow_list,
)

# Dispute cases (USE-8) must name the case and its legal basis.
CASE_REQUIRED = frozenset({Purpose.DISPUTE_RESOLUTION, Purpose.LEGAL_COMPLIANCE})
NO_CASE = "a dispute or legal request must name its case"
# A dispute's case must be one the subject opened (a balance dispute, learnt from loans'
# events): a recipient cannot make one up, nor borrow another customer's. A legal-compliance
# request's case is a court's or a regulator's, which no service of ours opens.
KNOWN_CASE_REQUIRED = frozenset({Purpose.DISPUTE_RESOLUTION})
# The same answer for a case unknown and a case of someone else: it tells the recipient
# nothing about whether a case exists.
UNKNOWN_CASE = "the case is not an open dispute of this subject"
DISCLOSED, REFUSED = "disclosed", "refused"


class RefusalCode(StrEnum):
    """A refusal's reason as a closed set, for `expensura_disclosures_refused_total`."""

    NO_CASE = "no-case"
    UNKNOWN_CASE = "unknown-case"
    NO_AGREEMENT = "no-agreement"
    NO_FIELDS = "no-fields"
    CONSENT = "consent"  # the consent service said no
    OTHER = "other"


class DisclosureRefusal(Exception):
    """Why nothing leaves; the reason goes into DisclosureRefused, the code into metrics."""

    def __init__(self, reason: str, code: RefusalCode = RefusalCode.OTHER) -> None:
        super().__init__(reason)
        self.code = code


class OutOfScope(Exception):
    """The partner's token does not carry the scope the request needs (nothing recorded:
    the request never reached the rules)."""


class DependencyDown(Exception):
    """Consent or identity did not answer: nothing is disclosed or stored."""


class Refused(Exception):
    """A request was refused, and the refusal is committed."""

    def __init__(self, reason: str, disclosure_id: UUID | None = None) -> None:
        super().__init__(reason)
        self.reason, self.disclosure_id = reason, disclosure_id


@dataclass(frozen=True)
class DisclosureAsk:
    """What a partner asks for."""

    subject_id: str
    purpose: Purpose
    fields: tuple[str, ...]
    case_reference: str | None = None


@dataclass(frozen=True)
class Plan:
    """What may go, if the consent service allows it: the agreement and the fields."""

    agreement: Agreement
    fields: list[str]


@dataclass(frozen=True)
class DisclosureRecord:
    """A disclosure or refusal, as the subject sees it."""

    disclosure_id: UUID
    subject_id: str
    partner_id: str
    purpose: str
    fields: list[str]
    outcome: str
    reason: str
    ground: str | None
    decision_id: UUID | None
    case_reference: str | None
    at: datetime


def check_scope(partner: Partner, scope: str) -> None:
    if scope not in partner.scopes:
        raise OutOfScope(f"The token does not carry the scope {scope}.")


def disclosure_stream(disclosure_id: UUID) -> str:
    """One disclosure request: made or refused."""
    return f"disclosure-{disclosure_id}"


def inbound_stream(subject_id: str) -> str:
    """What partners offered about a subject, accepted or refused."""
    return f"inbound-{subject_id}"


@enforces("SHR-3")
def covering_agreement(
    agreements: Iterable[Agreement], purpose: Purpose, now: datetime, *, inbound: bool = False
) -> Agreement:
    for agreement in agreements:
        if agreement.covers(purpose, now, inbound=inbound):
            return agreement
    raise DisclosureRefusal(
        f"no active confidentiality agreement covers {purpose.value}"
        + (" for inbound data" if inbound else ""),
        RefusalCode.NO_AGREEMENT,
    )


@enforces("SHR-2")
def minimise(
    kind: PartnerKind, purpose: Purpose, agreement: Agreement, requested: set[str]
) -> list[str]:
    """The fields that may go: asked ∩ allow-list(kind, purpose) ∩ agreement."""
    fields = sorted(requested & allow_list(kind, purpose) & agreement.fields)
    if not fields:
        raise DisclosureRefusal(
            f"none of the requested fields may go to a {kind.value} for {purpose.value}",
            RefusalCode.NO_FIELDS,
        )
    return fields


@enforces("USE-8", "SHR-2", "SHR-3")
def plan(
    ask: DisclosureAsk,
    kind: PartnerKind,
    agreements: Iterable[Agreement],
    now: datetime,
    *,
    case_subject: str | None = None,
) -> Plan:
    """What a request may get before consent is asked, in the order the refusals are
    given: the case (USE-8: named, and for a dispute one its subject opened; `case_subject`
    is whose the named case is, None if no such case is known), an agreement in force
    (SHR-3), the minimised fields (SHR-2)."""
    if ask.purpose in CASE_REQUIRED and not ask.case_reference:
        raise DisclosureRefusal(NO_CASE, RefusalCode.NO_CASE)
    if ask.purpose in KNOWN_CASE_REQUIRED and (
        case_subject is None or case_subject != ask.subject_id
    ):
        raise DisclosureRefusal(UNKNOWN_CASE, RefusalCode.UNKNOWN_CASE)
    agreement = covering_agreement(agreements, ask.purpose, now)
    return Plan(agreement, minimise(kind, ask.purpose, agreement, set(ask.fields)))


def refused(
    disclosure_id: UUID, partner_id: str, ask: DisclosureAsk, reason: str, decision_id: UUID | None
) -> DisclosureRefused:
    return DisclosureRefused(
        disclosure_id=disclosure_id,
        partner_id=partner_id,
        fields=sorted(ask.fields),
        reason=reason,
        decision_id=decision_id,
    )


@enforces("SHR-1")
def decide(
    disclosure_id: UUID,
    partner_id: str,
    ask: DisclosureAsk,
    planned: Plan,
    decision: DecisionOut,
    client_id: str | None = None,
) -> DisclosureMade | DisclosureRefused:
    """Made only on the consent service's yes (a consent naming the partner or a legal
    ground, its evidence in the basis); a no is a recorded refusal. `client_id`: the
    credential the partner pulled with, so that a leaked one's blast radius is its own."""
    if not decision.allowed:
        return refused(
            disclosure_id,
            partner_id,
            ask,
            f"consent service: {decision.reason}",
            decision.decision_id,
        )
    return DisclosureMade(
        disclosure_id=disclosure_id,
        partner_id=partner_id,
        fields=planned.fields,
        decision_id=decision.decision_id,
        decided_at=decision.decided_at,
        basis=decision.basis.recorded(),
        agreement_id=UUID(planned.agreement.agreement_id),
        case_reference=ask.case_reference,
        client_id=client_id,
    )


# --- inbound data (COL-4) ----------------------------------------------------------------


@dataclass(frozen=True)
class InboundOffer:
    subject_id: str
    purpose: Purpose
    category: DataCategory
    value: str


@enforces("COL-4")
def decide_inbound(
    partner_id: str,
    offer: InboundOffer,
    agreement: Agreement | None,
    decision: DecisionOut | None,
    refusal: str | None = None,
) -> InboundDataAccepted | InboundDataRefused:
    """Accepted only with an inbound agreement and the consent service's yes."""
    if refusal is None and decision is not None and not decision.allowed:
        refusal = f"consent service: {decision.reason}"
    if refusal is not None or agreement is None or decision is None:
        return InboundDataRefused(
            partner_id=partner_id, category=offer.category, reason=refusal or "refused"
        )
    return InboundDataAccepted(
        partner_id=partner_id,
        channel=CollectionChannel.FROM_PARTNER_WITH_CONSENT,
        category=offer.category,
        value=offer.value,
        decision_id=decision.decision_id,
        agreement_id=UUID(agreement.agreement_id),
    )


# --- the proof of a withdrawal (RGT-4) ---------------------------------------------------


@dataclass(frozen=True)
class WithdrawalProof:
    subject_id: str
    consent_id: str
    withdrawn_at: datetime | None
    before: list[dict[str, Any]]  # what left under the consent before its withdrawal
    after: list[dict[str, Any]]  # … at or after it: must be empty

    @property
    def holds(self) -> bool:
        return self.withdrawn_at is not None and not self.after


def withdrawal_in(record: dict[str, Any], subject_id: str, consent_id: str) -> datetime | None:
    """When consent's log record withdraws this consent of this subject, if it does."""
    if (
        record["event_type"] == "consent.ConsentWithdrawn"
        and record["subject_id"] == subject_id
        and record["payload"].get("consent_id") == consent_id
    ):
        return datetime.fromisoformat(record["recorded_at"])
    return None


def made_under(record: dict[str, Any], subject_id: str, consent_id: str) -> dict[str, Any] | None:
    """The gateway's log record as a disclosure under this consent, if it is one."""
    p = record["payload"]
    if (
        record["event_type"] in ("sharing.DisclosureMade", "sharing.PublicDisclosureMade")
        and record["subject_id"] == subject_id
        and p.get("basis", {}).get("consent_id") == consent_id
    ):
        return {
            "log": "sharing-gateway",
            "sequence": record["sequence"],
            "partner": p.get("partner_id", "public"),
            "at": p.get("decided_at") or record["occurred_at"],  # when consent decided it
            "decision_id": p["decision_id"],
            "fields": p["fields"],
        }
    return None


@enforces("RGT-4")
def released_under(
    record: dict[str, Any], subject_id: str, consent_id: str
) -> dict[str, Any] | None:
    """Identity's log record as a release of values to a recipient outside under this
    consent, if it is one: what left identity by any path, the gateway's or another."""
    basis = record.get("legal_basis") or {}
    if (
        record["event_type"] == "platform.PersonalDataAccessed"
        and record["subject_id"] == subject_id
        and record["actor"]["kind"] == "partner"
        and basis.get("ground") == "consent"
        and basis.get("reference") == consent_id
    ):
        p = record["payload"]
        return {
            "log": "identity",
            "sequence": record["sequence"],
            "partner": record["actor"]["id"],
            # when consent last allowed it (the redemption), as for the gateway's disclosures;
            # records without it: when identity wrote the release
            "at": p.get("decided_at") or record["recorded_at"],
            "decision_id": released_on(p),
            "fields": p["fields"],
        }
    return None


def released_on(payload: dict[str, Any]) -> str:
    """The decision a release was made on: its own field, or (records from before the case
    reference was sealed) the `decision:<id>` case reference identity wrote then."""
    if payload.get("decision_id"):
        return str(payload["decision_id"])
    legacy = payload.get("case_reference")
    return legacy.removeprefix("decision:") if isinstance(legacy, str) else ""


def prove_withdrawal(
    subject_id: str, consent_id: str, withdrawn_at: datetime | None, made: list[dict[str, Any]]
) -> WithdrawalProof:
    """Split what left under the consent (the gateway's disclosures, by when they were
    decided; identity's releases, by when they were made) by the moment it was withdrawn:
    the proof holds if nothing is at or after it."""
    if withdrawn_at is None:
        return WithdrawalProof(subject_id, consent_id, None, made, [])
    before = [m for m in made if datetime.fromisoformat(m["at"]) < withdrawn_at]
    after = [m for m in made if datetime.fromisoformat(m["at"]) >= withdrawn_at]
    return WithdrawalProof(subject_id, consent_id, withdrawn_at, before, after)
