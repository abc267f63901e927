"""Loans' settings: the shared ones, so far. Loans' own (assessment, retention) come with
its lifecycle; they go here, read once, and are reached through `loans_settings`."""

from __future__ import annotations

from expensura_events.runtime import ServiceRuntime
from expensura_events.settings import ServiceSettings


class LoansSettings(ServiceSettings):
    pass


def loans_settings(rt: ServiceRuntime) -> LoansSettings:
    """The running service's settings, typed (the runtime was built from `LoansSettings`)."""
    settings = rt.settings
    if not isinstance(settings, LoansSettings):
        raise TypeError(f"loans runs with LoansSettings, not {type(settings).__name__}")
    return settings
