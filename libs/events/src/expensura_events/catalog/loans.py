"""Events of the loans service (so far: applications, gated on real-name verification)."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from expensura_events.envelope import DomainEvent
from expensura_events.registry import event_type


@event_type("loans.LoanApplicationReceived", source="loans")
class LoanApplicationReceived(DomainEvent):
    application_id: UUID
    amount_cents: int = Field(gt=0)
    term_months: int = Field(gt=0, le=120)


@event_type("loans.LoanApplicationRefused", source="loans")
class LoanApplicationRefused(DomainEvent):
    reason: str = Field(max_length=200)
