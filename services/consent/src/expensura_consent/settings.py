"""Consent's settings: the shared ones plus the pace of its background work.

Read once, when the runtime is built; every use case reaches them through
`consent_settings(rt)`."""

from __future__ import annotations

from typing import Protocol

from pydantic import Field, model_validator

from expensura_events.contracts.decisions import RELEASE_WITHIN_SECONDS
from expensura_events.settings import ServiceSettings

# A decision row must outlive its use as a grant by far (clock drift between services, a
# slow redemption): the retention is refused at start below this many grant windows.
DECISION_RETENTION_MIN_WINDOWS = 60


# The consent worker's doorbell (ServiceRuntime.doorbell): what makes its work in this
# process rings it after the commit (policy/worker.py).
WORKER = "consent-worker"


class ConsentSettings(ServiceSettings):
    # The longest the worker sleeps between rounds: how late it sees the work no ring in
    # its own process announces (another replica's versions and consents, subjects the
    # projections learn of late, a restriction lifted). Rings and the next expiry wake it
    # sooner, so an idle consent sleeps (0.5 s rounds were a third of its idle CPU).
    worker_interval_seconds: float = Field(default=5.0, gt=0)
    # Policy notices requested per transaction (one fan-out round commits this many).
    policy_notice_batch: int = Field(default=200, ge=1)
    # A decision is deleted this long after it was made (retention.py). It is a grant
    # redeemed once within RELEASE_WITHIN_SECONDS; what a disclosure or release rested on
    # is in the caller's event (decision id, decided_at, basis), not in this table.
    decision_retention_seconds: int = Field(default=86400, le=90 * 24 * 3600)

    @model_validator(mode="after")
    def _decisions_outlive_their_grant(self) -> ConsentSettings:
        floor = DECISION_RETENTION_MIN_WINDOWS * RELEASE_WITHIN_SECONDS
        if self.decision_retention_seconds < floor:
            raise ValueError(
                f"decision_retention_seconds must be at least {floor} "
                f"({DECISION_RETENTION_MIN_WINDOWS} times RELEASE_WITHIN_SECONDS): a "
                "decision deleted near its grant window could vanish under a redemption "
                "or a caller's look-up"
            )
        return self


class _HasSettings(Protocol):
    @property
    def settings(self) -> ServiceSettings: ...


def consent_settings(rt: _HasSettings) -> ConsentSettings:
    """The runtime's settings, as consent's (its ServiceDefinition names the class)."""
    settings = rt.settings
    if not isinstance(settings, ConsentSettings):
        raise TypeError(f"consent runs with ConsentSettings, not {type(settings).__name__}")
    return settings
