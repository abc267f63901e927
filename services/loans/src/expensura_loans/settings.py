"""Loans' settings: the shared ones and loans' own, read once, reached through
`loans_settings`."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from expensura_events.runtime import ServiceRuntime
from expensura_events.settings import ServiceSettings

# The sandbox credit bureau `make run` starts (docs: README, "Ports").
LOCAL_CREDIT_BUREAU_URL = "http://127.0.0.1:8192"


class LoansSettings(ServiceSettings):
    # The consumer reporting agency assessments pull reports from (USE-2): its URL, our
    # subscriber id there and the key it issued us. Without a key, assessment answers 503.
    credit_bureau_url: str = Field(default=LOCAL_CREDIT_BUREAU_URL, max_length=500)
    credit_bureau_subscriber_id: str = Field(default="expensura", min_length=1, max_length=100)
    # The bureau as a recipient: its partner id in the sharing gateway's registry, which a
    # consent to credit assessment names (a report pull tells the bureau who applied).
    credit_bureau_partner_id: str = Field(default="credit-bureau", min_length=1, max_length=100)
    credit_bureau_key: str | None = Field(default=None, description="the subscriber key")
    credit_bureau_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # How often the servicing cycle records missed installments, delinquency and charge-offs
    # (as of the day it runs: once an hour keeps a loan's state within the day's hour).
    servicing_interval_seconds: float = Field(default=3600.0, gt=0, le=86400)
    # Credit reporting (SHR-4): who we are in the furnishing file's header and base records,
    # and how often the worker checks for a month to furnish, a delivery to retry and new
    # bureau disputes. `furnisher_program_id` is the identifier the bureau issued us
    # (header positions 13-22, where the sandbox bureau reads it).
    furnisher_program_id: str = Field(default="EXPENSURA", min_length=1, max_length=10)
    furnisher_identification_number: str = Field(
        default="EXPENSURA-LOANS", min_length=1, max_length=20
    )
    furnisher_name: str = Field(default="Heewan Finance Limited", min_length=1, max_length=40)
    furnisher_address: str = Field(default="", max_length=96)
    furnisher_telephone: str = Field(default="0000000000", pattern=r"^\d{10}$")
    furnisher_program_date: date = Field(default=date(2026, 1, 1))
    reporting_interval_seconds: float = Field(default=3600.0, gt=0, le=86400)
    # How often the retention holds that have ended are released (their records erased):
    # an hour late at most, against periods of years.
    retention_release_interval_seconds: float = Field(default=3600.0, gt=0, le=86400)
    # How many days before an installment's due date the servicing cycle reminds the
    # borrower of it (USE-10), once per installment.
    payment_due_reminder_days: int = Field(default=5, ge=0, le=31)


def loans_settings(rt: ServiceRuntime) -> LoansSettings:
    """The running service's settings, typed (the runtime was built from `LoansSettings`)."""
    settings = rt.settings
    if not isinstance(settings, LoansSettings):
        raise TypeError(f"loans runs with LoansSettings, not {type(settings).__name__}")
    return settings
