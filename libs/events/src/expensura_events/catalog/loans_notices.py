"""Loan communications (USE-10): loans asks for a notice to its customer; the one
notification path (incident's notices, which keeps its own sealed copy of the contacts)
delivers it on the customer's channels and records the outcome.

Loans never holds an address: it names the customer (the envelope's subject) and says what
to tell them. The body is about their credit (an adverse-action notice carries the reasons
and the credit score): sealed with their key, so erasing them erases every notice's text.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import Field

from expensura_events.envelope import DomainEvent, PersonalData
from expensura_events.registry import event_type
from expensura_events.vocabulary import DataCategory, Grade

NoticeBody = Annotated[
    str,
    PersonalData(DataCategory.CREDIT_RECORD, Grade.SENSITIVE),
    Field(min_length=1, max_length=20_000),
]


class NoticeKind(StrEnum):
    """What a loan communication is (USE-10's kinds; each may get its own channel rules)."""

    ADVERSE_ACTION = "adverse-action"
    OFFER = "offer"
    PAYMENT_DUE = "payment-due"
    RECEIPT = "receipt"
    LATE_NOTICE = "late-notice"


@event_type("loans.CustomerNoticeRequested", source="loans")
class CustomerNoticeRequested(DomainEvent):
    """Tell the customer (the envelope's subject) this, once (`notice_id`)."""

    notice_id: UUID
    kind: NoticeKind
    # Names the matter, never the person or their figures: "Your loan application".
    title: str = Field(min_length=1, max_length=200)
    body: NoticeBody
