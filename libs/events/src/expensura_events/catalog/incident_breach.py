"""Breach notices (SEC-5, USE-10): incident planned one notice per affected subject of an
incident on the one notification path (each then delivered and recorded as an
`incident.CustomerNoticeDelivered` / `…DeliveryFailed` of kind `breach`), and published a
public notice when individual notice was impractical.

Nothing personal: counts, the incident's id, fixed-phrase reasons and languages. The
notices' text stays sealed per subject in incident's own table; the public notice's text is
the incident's, about no one person.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from expensura_events.envelope import DomainEvent
from expensura_events.registry import event_type


@event_type("incident.BreachNoticesPlanned", source="incident")
class BreachNoticesPlanned(DomainEvent):
    """A run of `send_breach_notices`: `planned` new notices (due at once), `already` known
    from an earlier run (not planned again), `unreachable` with no working channel (left
    to the public notice)."""

    incident_id: UUID
    planned: int = Field(ge=0)
    already: int = Field(ge=0)
    unreachable: int = Field(ge=0)
    languages: list[str] = Field(default_factory=list, max_length=20)
    # The stored blast radius whose notifiable subjects were notified (None: subjects the
    # officer listed). Added later: older events read as None.
    blast_radius_id: UUID | None = None


@event_type("incident.PublicNoticePublished", source="incident")
class PublicNoticePublished(DomainEvent):
    """The incident's public (substitute) notice is published at `GET /v1/public-notices`:
    why (fixed phrases), for how many subjects, and the rule's source."""

    incident_id: UUID
    public_notice_id: UUID
    reasons: list[str] = Field(min_length=1, max_length=5)
    subjects: int = Field(ge=0)
    unreachable: int = Field(ge=0)
    substitute: bool
    source: str = Field(min_length=1, max_length=200)
