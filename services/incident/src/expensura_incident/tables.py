"""All of the incident service's own tables (SQLAlchemy Core). The schema is made by the
migrations; these declarations are how the code reads and writes it."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# Where to reach each subject when a breach notice must go out (SEC-5, USE-10): the current
# e-mail and phone, as identity's events say, sealed with the subject's key (SEC-1), and the
# e-mail's keyed digest (HMAC-SHA256) to compare an address by; purged on erasure.
notification_contacts = Table(
    "notification_contacts",
    metadata,
    Column("subject_id", Text, primary_key=True),
    Column("email_sealed", JSONB, nullable=True),
    Column("phone_sealed", JSONB, nullable=True),
    Column("email_hmac", Text, nullable=True),
    Column("updated_from_event", Uuid, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
