"""Events of a loan's life after its application (USE-3): the offer with its Truth-in-Lending
disclosure, acceptance, disbursement, payments, delinquency, pay-off, charge-off, closing.

Every amount, rate and delinquency bucket is credit data about the borrower: sealed with
their key (or a retention hold's), as `catalog.loans` seals the applied-for amount. Dates,
counts and ids are not personal on their own and stay readable for servicing.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from expensura_events.catalog.loans import AmountCents
from expensura_events.envelope import DomainEvent, PersonalData
from expensura_events.registry import event_type, upcaster
from expensura_events.vocabulary import DataCategory, Grade

_CREDIT = PersonalData(DataCategory.LOAN_RECORD, Grade.SENSITIVE)

# A part of a payment or a charge that may be nothing (no fee, an interest-free loan).
PartCents = Annotated[int, _CREDIT, Field(ge=0)]
# In percent, two decimals, as disclosed ("13.64" is 13.64 %): the rate priced for this
# borrower tells their creditworthiness.
PercentageRate = Annotated[Decimal, _CREDIT, Field(ge=0, max_digits=6, decimal_places=2)]
# The buckets of the loans service's `DelinquencyBucket` that make a loan delinquent.
DelinquentBucketName = Literal["1-29", "30-59", "60-89", "90-119", "120+"]

DisclosureVersion = Annotated[str, Field(min_length=1, max_length=100)]


@event_type("loans.LoanOffered", source="loans")
class LoanOffered(DomainEvent):
    """An offer and its Reg Z §1026.18 disclosure, figure by figure as shown."""

    loan_id: UUID
    application_id: UUID
    amount_financed_cents: AmountCents
    prepaid_finance_charge_cents: PartCents
    finance_charge_cents: PartCents
    annual_percentage_rate: PercentageRate
    total_of_payments_cents: AmountCents
    number_of_payments: int = Field(gt=0)
    regular_payment_cents: AmountCents
    final_payment_cents: AmountCents
    first_due_date: date
    final_due_date: date
    disclosure_version: DisclosureVersion


@event_type("loans.OfferAccepted", source="loans")
class OfferAccepted(DomainEvent):
    """The borrower accepted the offer as disclosed by this version (what they were shown)."""

    loan_id: UUID
    disclosure_version: DisclosureVersion


@event_type("loans.LoanDisbursed", source="loans")
class LoanDisbursed(DomainEvent):
    loan_id: UUID
    amount_cents: AmountCents
    disbursed_on: date


@event_type("loans.PaymentReceived", source="loans")
class PaymentReceived(DomainEvent):
    """A payment and how it was applied: fees, then interest, then principal."""

    loan_id: UUID
    idempotency_key: str = Field(min_length=1, max_length=200)
    amount_cents: AmountCents
    to_fees_cents: PartCents
    to_interest_cents: PartCents
    to_principal_cents: PartCents
    paid_on: date


@event_type("loans.PaymentMissed", source="loans")
class PaymentMissed(DomainEvent):
    loan_id: UUID
    installment_number: int = Field(gt=0)
    due_date: date


@event_type("loans.LoanBecameDelinquent", source="loans")
class LoanBecameDelinquent(DomainEvent):
    loan_id: UUID
    bucket: Annotated[DelinquentBucketName, _CREDIT]


@event_type("loans.LoanPaidOff", source="loans")
class LoanPaidOff(DomainEvent):
    loan_id: UUID
    paid_off_on: date


@event_type("loans.LoanChargedOff", source="loans")
class LoanChargedOff(DomainEvent):
    loan_id: UUID
    principal_charged_off_cents: AmountCents
    days_past_due: Annotated[int, _CREDIT, Field(ge=120)]
    charged_off_on: date


@event_type("loans.LoanClosed", source="loans")
class LoanClosed(DomainEvent):
    loan_id: UUID
    closed_on: date


# Loans' own reference for a balance dispute: "LD-" and 16 hex digits, drawn at random. The
# borrower and the partner who works the case quote it, and it is the gateway's proof that a
# dispute-resolution disclosure names a real case of that borrower: so it travels sealed, like
# a partner's case reference, and the log and Kafka carry only its digest, on which the
# sharing gateway looks the case up without opening the borrower's key.
DisputeCaseReference = Annotated[
    str,
    PersonalData(DataCategory.LEGAL_CASE, Grade.PERSONAL),
    Field(pattern=r"^LD-[0-9A-F]{16}$"),
]
# SHA-256 of the reference, hex: one-way (a 64-bit random preimage is not worth guessing).
DisputeCaseDigest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def dispute_case_digest(case_reference: str) -> str:
    """The digest the log carries and the gateway keys a balance dispute's case by."""
    return hashlib.sha256(case_reference.strip().upper().encode()).hexdigest()


@event_type("loans.BalanceDisputeOpened", version=2, source="loans")
class BalanceDisputeOpened(DomainEvent):
    """The borrower disputes their balance (USE-8): a case opened, which the sharing gateway
    then accepts as the case of a dispute-resolution disclosure about this borrower alone.
    v2 sealed `case_reference` and added `case_digest`."""

    loan_id: UUID
    case_reference: DisputeCaseReference
    case_digest: DisputeCaseDigest
    # In the borrower's words: sealed (it may say anything about them and their money).
    reason: Annotated[
        str,
        PersonalData(DataCategory.LOAN_RECORD, Grade.SENSITIVE),
        Field(min_length=1, max_length=2000),
    ]


@upcaster("loans.BalanceDisputeOpened", from_version=1)
def _dispute_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 kept the reference readable: its digest is computed from it."""
    return {**payload, "case_digest": dispute_case_digest(payload["case_reference"])}
