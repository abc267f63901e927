"""Events of credit reporting to the bureaus (SHR-4): the monthly furnishing file, its
delivery, and the bureau disputes about what we furnished. There is no sale purpose: data
leaves only as credit reporting, in the bureaus' standard (Metro 2-style) format.

A file holds every borrower's credit record, and a field is sealed with ONE subject's key:
so the log keeps each borrower's line in an event of their own (`AccountFurnished`, sealed
with their key: erasing them erases their line), and the file's event keeps what is true of
the whole file and names nobody: its period, counts and SHA-256 (the digest of what was
sent, which the lines re-assemble to while their keys live). No money totals: in a small
portfolio a total is one borrower's balance.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from expensura_events.envelope import DomainEvent, PersonalData
from expensura_events.registry import event_type
from expensura_events.vocabulary import DataCategory, Grade

_CREDIT_RECORD = PersonalData(DataCategory.CREDIT_RECORD, Grade.SENSITIVE)

Period = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]  # YYYY-MM
# One base record of the file, as sent: 426 characters (Metro 2's record length).
BaseRecord = Annotated[str, _CREDIT_RECORD, Field(min_length=426, max_length=426)]
AccountNumber = Annotated[str, Field(min_length=1, max_length=30)]
BureauDisputeId = Annotated[str, Field(min_length=1, max_length=200)]
# The values of the loans service's `reporting.domain.DisputeOutcome`.
DisputeOutcomeName = Literal["verified-as-reported", "modified", "deleted"]


@event_type("loans.AccountFurnished", source="loans")
class AccountFurnished(DomainEvent):
    """One borrower's line of the month's file (subject: the borrower)."""

    period: Period
    account_number: AccountNumber
    record: BaseRecord


@event_type("loans.FurnishingFileProduced", source="loans")
class FurnishingFileProduced(DomainEvent):
    """The month's file, validated, as it will be sent: `status_counts` by Metro 2 account
    status code, `sha256` of its bytes. Names no one (the lines are `AccountFurnished`)."""

    period: Period
    record_count: int = Field(ge=0)
    status_counts: dict[str, int]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


@event_type("loans.FurnishingFileDelivered", source="loans")
class FurnishingFileDelivered(DomainEvent):
    period: Period
    bureau_file_id: str = Field(min_length=1, max_length=200)


@event_type("loans.BureauDisputeReceived", source="loans")
class BureauDisputeReceived(DomainEvent):
    """A consumer disputed what we furnished; our investigation is due by `deadline`
    (FCRA §611(a)(1): 30 days from the bureau's receipt, 45 with more information)."""

    dispute_id: BureauDisputeId
    account_number: AccountNumber
    deadline: datetime


@event_type("loans.BureauDisputeAnswered", source="loans")
class BureauDisputeAnswered(DomainEvent):
    dispute_id: BureauDisputeId
    outcome: DisputeOutcomeName
