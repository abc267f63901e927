"""The gateway's settings: the shared ones plus the partner tokens' lifetime, the replay
window and how long it waits for consent and identity.

Read once, when the runtime is built; every use case reaches them through
`gateway_settings(rt)`."""

from __future__ import annotations

from typing import Protocol

from pydantic import Field, model_validator

from expensura_events.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    # A partner's access token lives this long; a stolen one is useless soon after.
    partner_token_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    # A signature's `created` may be this far from now; with the used-once nonce it stops replay.
    request_clock_skew_seconds: int = Field(default=300, ge=5, le=3600)
    # Consent and identity answer within this, or nothing is disclosed (503).
    dependency_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # A used nonce is kept this long after it was seen (then deleted: retention.py). Its
    # request was signed at most one skew before it was seen and stays fresh until one skew
    # after it was signed, which may be in the future: so up to two skews after it was seen.
    # A shorter retention would let it be replayed (refused below).
    nonce_retention_seconds: int = Field(default=7200, ge=10, le=30 * 24 * 3600)

    @model_validator(mode="after")
    def _nonces_outlive_the_replay_window(self) -> GatewaySettings:
        if self.nonce_retention_seconds < 2 * self.request_clock_skew_seconds:
            raise ValueError(
                "nonce_retention_seconds must be at least twice request_clock_skew_seconds: a "
                "nonce deleted while its request is still fresh could be replayed"
            )
        return self


class _HasSettings(Protocol):
    @property
    def settings(self) -> ServiceSettings: ...


def gateway_settings(rt: _HasSettings) -> GatewaySettings:
    """The runtime's settings, as the gateway's (its ServiceDefinition names the class)."""
    settings = rt.settings
    if not isinstance(settings, GatewaySettings):
        raise TypeError(f"the gateway runs with GatewaySettings, not {type(settings).__name__}")
    return settings
