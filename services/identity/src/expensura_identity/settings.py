"""Identity's settings: the shared ones plus token lifetimes, throttling and cooling-off.

Read once, when the runtime is built; every use case reaches them through
`identity_settings(rt)`."""

from __future__ import annotations

from typing import Protocol

from pydantic import Field, model_validator

from expensura_events.settings import ServiceSettings

# The background workers' doorbells (ServiceRuntime.doorbell): the use cases that make
# their work in this process ring them after the commit.
RIGHTS_WORKER = "rights-worker"
VERIFICATION_WORKER = "verification-worker"


class IdentitySettings(ServiceSettings):
    access_token_ttl_seconds: int = 600
    # A refresh token's own lifetime (rotation issues a new one) ...
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # ... and the absolute cap of its family, from the sign-in, whatever the rotations: a
    # leaked refresh token outlives neither. Staff get one working day; users a month.
    user_session_max_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    staff_session_max_seconds: int = Field(default=10 * 3600, ge=60, le=24 * 3600)
    # Throttle: this many failed sign-ins per account (or per client address) in the window.
    sign_in_failures_allowed: int = 5
    # Many users can share one address (carrier NAT), so the per-address limit is looser.
    sign_in_failures_per_client: int = 50
    sign_in_window_seconds: int = 900
    # A throttle row is deleted this long after its window started (retention.py): a row
    # whose window has passed counts nothing, so it must only outlive the window (checked).
    sign_in_throttle_retention_seconds: int = Field(default=3600, ge=60, le=30 * 24 * 3600)
    # An MFA challenge is deleted this long after it expired: a deleted one is unknown and
    # refused like a used one; only the replay's refusal event (which names the staff
    # member) is lost, so the retention is how long replays of it are attributed.
    mfa_challenge_retention_seconds: int = Field(default=3600, ge=60, le=30 * 24 * 3600)
    # A refresh token is deleted this long after its family's absolute end: past it every
    # token of the family is refused ("session-cap") before reuse is even looked at, so
    # reuse detection loses nothing; a deleted token is refused as unknown.
    refresh_token_retention_seconds: int = Field(default=86400, ge=60, le=90 * 24 * 3600)
    # An e-mail proof's code row is deleted this long after the code expired: a code
    # presented afterwards is refused ("no code was issued") and a new one can be asked for.
    email_proof_retention_seconds: int = Field(default=86400, ge=60, le=30 * 24 * 3600)
    # Account cancellation: the user can take it back during this period (RUL-2).
    cooling_off_seconds: int = 7 * 24 * 3600
    verification_agency_url: str = "http://127.0.0.1:8190"
    verification_timeout_seconds: float = 3.0
    verification_retry_seconds: float = 1.0
    # Erasure: ask again the stores that have not confirmed, then escalate to a person.
    erasure_retry_seconds: float = 60.0
    erasure_max_attempts: int = 5
    # The longest the rights worker sleeps between rounds (rights/worker.py): it wakes
    # sooner when a cooling-off period ends or this process opens a cancellation, and runs
    # at this pace while a request is in flight (processing stopped, erasing).
    rights_worker_interval_seconds: float = 5.0

    @model_validator(mode="after")
    def _throttle_rows_outlive_their_window(self) -> IdentitySettings:
        if self.sign_in_throttle_retention_seconds < self.sign_in_window_seconds:
            raise ValueError(
                "sign_in_throttle_retention_seconds must be at least sign_in_window_seconds: "
                "a row deleted inside its window would forget the failures it counts"
            )
        return self


class _HasSettings(Protocol):
    @property
    def settings(self) -> ServiceSettings: ...


def identity_settings(rt: _HasSettings) -> IdentitySettings:
    """The runtime's settings, as identity's (its ServiceDefinition names the class)."""
    settings = rt.settings
    if not isinstance(settings, IdentitySettings):
        raise TypeError(f"identity runs with IdentitySettings, not {type(settings).__name__}")
    return settings
