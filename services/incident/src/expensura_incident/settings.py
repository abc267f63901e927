"""The incident service's settings: so far exactly the shared ones (notice channels and
regulator deadlines will add theirs). Read once, reached through `incident_settings(rt)`."""

from __future__ import annotations

from typing import Protocol

from pydantic import Field

from expensura_events.settings import ServiceSettings


class IncidentSettings(ServiceSettings):
    # How often the notice sender looks for customer notices due (notices/service.py): the
    # longest a requested notice waits before its first attempt.
    notice_send_interval_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="seconds between the notice sender's rounds"
    )


class _HasSettings(Protocol):
    @property
    def settings(self) -> ServiceSettings: ...


def incident_settings(rt: _HasSettings) -> IncidentSettings:
    """The runtime's settings, as the incident service's (its ServiceDefinition names the
    class)."""
    settings = rt.settings
    if not isinstance(settings, IncidentSettings):
        raise TypeError(f"incident runs with IncidentSettings, not {type(settings).__name__}")
    return settings
