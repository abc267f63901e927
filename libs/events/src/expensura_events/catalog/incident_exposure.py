"""The blast radius of an incident (SEC-5): who was exposed, computed from the access and
disclosure events of every service's log (incident's `exposure` index).

The event holds no subject: the list of exposed subjects stays in incident's own table,
sealed under incident's key (one list spans many subjects, and a field is sealed with ONE
subject's key, so the list cannot travel sealed in the log). The event carries the counts,
and a keyed digest (HMAC-SHA256 under incident's secret) of the sorted list, so the table's
list can be checked against the log without the log revealing it. A subject scope's value
(a subject key) and the compromised key owners (subject keys too) are counted, never named.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import Field

from expensura_events.envelope import DomainEvent
from expensura_events.registry import event_type


class ScopeKind(StrEnum):
    """Whose accesses a blast radius covers."""

    PARTNER = "partner"  # a partner (every credential of it)
    CREDENTIAL = "credential"  # one partner credential (client id)
    STAFF = "staff"  # a staff member
    SERVICE = "service"  # a service reading as itself (a system actor)
    SUBJECT = "subject"  # one data subject's key
    CATEGORY = "category"  # a data category (DPV pd: term)


Counts = dict[str, int]


@event_type("incident.BlastRadiusComputed", source="incident")
class BlastRadiusComputed(DomainEvent):
    """The blast radius of `incident_id` over one scope and window, as the index held it.
    `subjects`: every subject with a value in scope; `notifiable_subjects`: those with a
    readable one (plaintext, or sealed under a key that was taken). `by_protection` counts
    each subject once, under its weakest protection; `categories` and `fields` count the
    notifiable subjects per category and field. `verified_sources`: the source logs whose
    chain was checked, with the sequence checked up to; `unverified_sources`: those that
    could not be (with the reason, a fixed phrase)."""

    computation_id: UUID
    incident_id: UUID
    scope_kind: ScopeKind
    scope_value: str | None = Field(default=None, max_length=200)  # None for a subject scope
    window_start: datetime
    window_end: datetime
    compromised_key_owners: int = Field(ge=0)
    subjects: int = Field(ge=0)
    notifiable_subjects: int = Field(ge=0)
    by_protection: Counts
    categories: Counts
    fields: Counts
    subjects_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    verified_sources: Counts
    unverified_sources: dict[str, str]
