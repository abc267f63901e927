"""Stopping processing (RUL-2), the pure part: the restriction states and the one rule
that reads them. No storage, so a service's pure domain can take a subject's restriction
as an input; `restrictions` reads and writes the states.
"""

from __future__ import annotations

from enum import StrEnum

from expensura_events.vocabulary import Purpose


class Restriction(StrEnum):
    """What a subject's cancellation has done to their data (stored as its value)."""

    PROCESSING_STOPPED = "processing-stopped"
    ERASED = "erased"


# What a service may still do with a stopped subject: keep the law's records, and security.
ALLOWED_AFTER_STOP = frozenset({Purpose.LEGAL_COMPLIANCE, Purpose.SECURITY})


class ProcessingRestricted(Exception):
    """The subject cancelled their account: their data may not be used for this purpose."""

    def __init__(self, subject_id: str, state: Restriction) -> None:
        super().__init__(f"processing of subject {subject_id}'s data has stopped ({state})")
        self.subject_id, self.state = subject_id, state


def permits(state: Restriction | None, purpose: Purpose) -> bool:
    """RUL-2: may a subject in `state` (None: unrestricted) have their data used for
    `purpose`? Only the law's own purposes survive a restriction."""
    return state is None or purpose in ALLOWED_AFTER_STOP


def ensure_permitted(subject_id: str, state: Restriction | None, purpose: Purpose) -> None:
    """`permits`, raising `ProcessingRestricted` when it does not."""
    if state is not None and not permits(state, purpose):
        raise ProcessingRestricted(subject_id, state)
