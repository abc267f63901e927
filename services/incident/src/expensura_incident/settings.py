"""The incident service's settings: so far exactly the shared ones (notice channels and
regulator deadlines will add theirs). Read once, reached through `incident_settings(rt)`."""

from __future__ import annotations

from typing import Protocol

from expensura_events.settings import ServiceSettings


class IncidentSettings(ServiceSettings):
    pass


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
