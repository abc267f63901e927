"""Every event type of every service, registered on import (the published catalog)."""

from expensura_events.catalog import (
    identity,
    identity_profile,
    identity_staff,
    identity_verification,
    platform,
    rights,
)

__all__ = [
    "identity",
    "identity_profile",
    "identity_staff",
    "identity_verification",
    "platform",
    "rights",
]
