"""Partners, agreements and what each may receive. Pure rules, no framework.

SHR-2: only necessary data for a specific purpose: per partner kind and purpose an
allow-list of fields; a disclosure gets the intersection of what was asked, that list, and
what the partner's confidentiality agreement covers. SHR-3: no active agreement, nothing.
SHR-4: there is no sale or rent purpose to ask for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from expensura_events.vocabulary import DataCategory, Purpose


class PartnerKind(StrEnum):
    CREDIT_BUREAU = "credit-bureau"
    VERIFICATION_AGENCY = "verification-agency"
    COLLECTION_AGENCY = "collection-agency"
    LAW_FIRM = "law-firm"
    COURT = "court-or-arbitration-body"
    TECHNOLOGY_PROVIDER = "technology-provider"
    RESEARCH_INSTITUTION = "research-institution"
    SUCCESSOR_ENTITY = "successor-entity"


# The fields the gateway can disclose, with their data category (where they come from is
# the adapter's business: today identity's contact details).
FIELD_CATEGORIES: dict[str, DataCategory] = {
    "email": DataCategory.CONTACT,
    "phone": DataCategory.CONTACT,
}

ALLOW_LISTS: dict[PartnerKind, dict[Purpose, frozenset[str]]] = {
    PartnerKind.CREDIT_BUREAU: {Purpose.CREDIT_ASSESSMENT: frozenset({"phone"})},
    PartnerKind.VERIFICATION_AGENCY: {Purpose.IDENTITY_VERIFICATION: frozenset({"phone", "email"})},
    PartnerKind.COLLECTION_AGENCY: {Purpose.DISPUTE_RESOLUTION: frozenset({"phone", "email"})},
    PartnerKind.LAW_FIRM: {Purpose.DISPUTE_RESOLUTION: frozenset({"email"})},
    PartnerKind.COURT: {
        Purpose.DISPUTE_RESOLUTION: frozenset({"email", "phone"}),
        Purpose.LEGAL_COMPLIANCE: frozenset({"email", "phone"}),
    },
    PartnerKind.TECHNOLOGY_PROVIDER: {Purpose.COMMUNICATION: frozenset({"email"})},
    PartnerKind.RESEARCH_INSTITUTION: {},  # aggregates only (RUL-3)
    PartnerKind.SUCCESSOR_ENTITY: {},  # through the transfer workflow (TRF-1)
}

# Dispute cases (USE-8) must name the case and its legal basis.
CASE_REQUIRED = frozenset({Purpose.DISPUTE_RESOLUTION, Purpose.LEGAL_COMPLIANCE})


@dataclass(frozen=True)
class Agreement:
    agreement_id: str
    reference: str
    purposes: frozenset[Purpose]
    fields: frozenset[str]
    inbound: bool
    starts_at: datetime
    ends_at: datetime

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


class DisclosureRefusal(Exception):
    """Why nothing leaves; the reason goes into DisclosureRefused."""


def covering_agreement(
    agreements: list[Agreement], purpose: Purpose, now: datetime, *, inbound: bool = False
) -> Agreement:
    for agreement in agreements:
        if (
            agreement.active(now)
            and purpose in agreement.purposes
            and (agreement.inbound or not inbound)
        ):
            return agreement
    raise DisclosureRefusal(
        f"no active confidentiality agreement covers {purpose.value}"
        + (" for inbound data" if inbound else "")
    )


def minimise(
    kind: PartnerKind, purpose: Purpose, agreement: Agreement, requested: set[str]
) -> list[str]:
    """The fields that may go: asked ∩ allow-list(kind, purpose) ∩ agreement."""
    allowed = ALLOW_LISTS[kind].get(purpose, frozenset()) & agreement.fields
    fields = sorted(requested & allowed)
    if not fields:
        raise DisclosureRefusal(
            f"none of the requested fields may go to a {kind.value} for {purpose.value}"
        )
    return fields


def categories_of(fields: list[str]) -> list[str]:
    return sorted({FIELD_CATEGORIES[f].value for f in fields})
