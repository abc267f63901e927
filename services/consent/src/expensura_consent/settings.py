"""Consent's settings: the shared ones plus the pace of its background work.

Read once, when the runtime is built; every use case reaches them through
`consent_settings(rt)`."""

from __future__ import annotations

from typing import Protocol

from pydantic import Field

from expensura_events.settings import ServiceSettings


class ConsentSettings(ServiceSettings):
    # How often the worker looks for due expiries and unsent policy notices.
    worker_interval_seconds: float = Field(default=0.5, gt=0)
    # Policy notices requested per transaction (one fan-out round commits this many).
    policy_notice_batch: int = Field(default=200, ge=1)


class _HasSettings(Protocol):
    @property
    def settings(self) -> ServiceSettings: ...


def consent_settings(rt: _HasSettings) -> ConsentSettings:
    """The runtime's settings, as consent's (its ServiceDefinition names the class)."""
    settings = rt.settings
    if not isinstance(settings, ConsentSettings):
        raise TypeError(f"consent runs with ConsentSettings, not {type(settings).__name__}")
    return settings
