"""Every event type of every service, registered on import (the published catalog)."""

from expensura_events.catalog import (
    consent,
    identity,
    identity_notifications,
    identity_profile,
    identity_staff,
    identity_verification,
    incident_notices,
    loans,
    loans_assessment,
    loans_notices,
    loans_reporting,
    loans_risk,
    loans_servicing,
    platform,
    rights,
    sharing,
)

__all__ = [
    "consent",
    "identity",
    "identity_notifications",
    "identity_profile",
    "identity_staff",
    "identity_verification",
    "incident_notices",
    "loans",
    "loans_assessment",
    "loans_notices",
    "loans_reporting",
    "loans_risk",
    "loans_servicing",
    "platform",
    "rights",
    "sharing",
]
