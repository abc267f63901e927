"""Profile rules: IDFA only with tracking permission (COL-1); interaction events stripped of
every identifier before anything is stored (COL-3). Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

# Anything an app might send that could single a person out. Dropped, never stored.
IDENTIFIERS = frozenset(
    {
        "user_id",
        "account_id",
        "device_id",
        "idfa",
        "idfv",
        "ip",
        "ip_address",
        "email",
        "phone",
        "session_id",
        "advertising_id",
        "location",
        "latitude",
        "longitude",
        "user_agent",
    }
)
KEPT = ("type", "screen", "element")


class TrackingNotAllowed(ValueError):
    pass


def check_device(tracking_allowed: bool, idfa: str | None) -> None:
    if idfa is not None and not tracking_allowed:
        raise TrackingNotAllowed("an IDFA may only be sent when the user allowed tracking")


def anonymise(interaction: dict[str, Any]) -> dict[str, Any]:
    """Keep the kind of interaction and where, at hour precision; drop everything else.

    Dropping (rather than pseudonymising) is the choice: no key exists that could link two
    interactions, or an interaction to a person, ever again."""
    at: datetime = interaction["occurred_at"]
    return {k: interaction.get(k) for k in KEPT} | {
        "hour": at.replace(minute=0, second=0, microsecond=0)
    }
