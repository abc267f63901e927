"""The data subjects consent knows of (ids and dates only). Pure: no framework, no database.

Consent learns every subject from identity's events, to notify each of a new policy
version exactly once; it never reads identity's tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class KnownSubject:
    subject_id: str
    account_opened_at: datetime | None
    identity_events: int


class SubjectNotKnown(LookupError):
    """No identity event about the subject has reached consent (yet)."""
