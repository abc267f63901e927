"""Who a consent or a legal ground may name as a recipient. Pure: no framework, no database.

A recipient is a partner the sharing gateway registered, or the public (PUB-1). A consent
naming anyone else could never be used, and would record a choice about no one.
"""

from __future__ import annotations

from dataclasses import dataclass

from expensura_events.obligations import enforces
from expensura_events.vocabulary import PUBLIC_RECIPIENT


@dataclass(frozen=True)
class Recipient:
    recipient: str
    kind: str
    name: str


PUBLIC = Recipient(PUBLIC_RECIPIENT, "public", "Public disclosure (PUB-1)")


class UnknownRecipients(ValueError):
    """Named recipients that are neither registered partners nor the public."""


@enforces("PUB-1")
def check_recipients(named: set[str], registered: set[str]) -> None:
    """Raises UnknownRecipients unless every named recipient exists."""
    if unknown := named - registered - {PUBLIC_RECIPIENT}:
        raise UnknownRecipients(
            f"not registered partners: {', '.join(sorted(unknown))} (see GET /v1/recipients)"
        )
