"""All of the incident service's own tables (SQLAlchemy Core). The schema is made by the
migrations; these declarations are how the code reads and writes it."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, Table, Text, Uuid, text
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

# Customer notices other services asked incident to deliver (USE-10), one row per notice
# (`notice_id`, the requester's). The body is sealed with the subject's key (SEC-1; NULL once
# not needed); the title names the matter, never the person. `next_attempt_at` is when the
# sender next takes the row (NULL: nothing more to do). Purged on erasure.
customer_notices = Table(
    "customer_notices",
    metadata,
    Column("notice_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("kind", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("body_sealed", JSONB, nullable=True),
    Column("state", Text, nullable=False),
    Column("reason", Text, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("requested_by_event", Uuid, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index(
        "ix_customer_notices_due",
        "next_attempt_at",
        postgresql_where=text("next_attempt_at IS NOT NULL"),
    ),
)
