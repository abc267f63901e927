"""The incident service's settings: the shared ones, the notice sender's rhythm and the
notice channels' providers (regulator deadlines will add theirs). Read once, reached through
`incident_settings(rt)`."""

from __future__ import annotations

from typing import Protocol

from pydantic import Field, field_validator

from expensura_events.catalog.identity_notifications import MailingAddress
from expensura_events.settings import ServiceSettings

# The sandbox messaging providers `make run` starts (docs: README, "Ports").
LOCAL_MESSAGING_URL = "http://127.0.0.1:8193"


class IncidentSettings(ServiceSettings):
    # How often the notice sender looks for customer notices due (notices/service.py): the
    # longest a requested notice waits before its first attempt.
    notice_send_interval_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="seconds between the notice sender's rounds"
    )

    # The notice channels' providers (notices/providers.py); `make run` and the tests point
    # them at the sandbox (expensura_ops.sandboxes.messaging, one process for the three).
    # A provider without its credentials is not configured: its channel is skipped, as a
    # channel without an address is. E-mail goes through EXPENSURA_SMTP_URL.
    push_url: str = Field(default=LOCAL_MESSAGING_URL, max_length=500)  # FCM HTTP v1
    push_project_id: str = Field(default="expensura", min_length=1, max_length=100)
    push_key: str | None = Field(default=None, description="the push provider's bearer key")
    sms_url: str = Field(default=LOCAL_MESSAGING_URL, max_length=500)  # Twilio's API
    sms_account_sid: str | None = Field(default=None, max_length=64)
    sms_auth_token: str | None = Field(default=None, description="with the account SID")
    sms_from: str = Field(default="+15005550006", pattern=r"^\+[1-9][0-9]{6,14}$")
    letter_url: str = Field(default=LOCAL_MESSAGING_URL, max_length=500)  # Lob's API
    letter_api_key: str | None = Field(default=None, description="the print-and-mail key")
    # The letters' return address, as a mailing address is written (3 or 4 lines).
    letter_from: str = Field(
        default="Expensura Customer Care\n100 Market Street\nSan Francisco, CA 94105",
        max_length=300,
    )
    provider_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("letter_from")
    @classmethod
    def _letter_from_is_an_address(cls, value: str) -> str:
        MailingAddress.parse(value)  # refused at start, not at the first letter
        return value


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
