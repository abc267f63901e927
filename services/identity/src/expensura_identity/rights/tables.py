"""Identity's rights state: cancellation requests, erasure confirmations, certificates.
None of these rows hold personal data: subject ids, dates and states only."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, Table, Text, Uuid

metadata = MetaData()

cancellation_requests = Table(
    "cancellation_requests",
    metadata,
    Column("request_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("state", Text, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("cooling_off_until", DateTime(timezone=True), nullable=False),
    Column("erasure_requested_at", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
)

erasure_confirmations = Table(
    "erasure_confirmations",
    metadata,
    Column("request_id", Uuid, primary_key=True),
    Column("service", Text, primary_key=True),
    Column("confirmed_at", DateTime(timezone=True), nullable=False),
    Column("purged", JSON, nullable=False),
    Column("retained", JSON, nullable=False),
    Column("event_id", Uuid, nullable=False),
)

erasure_certificates = Table(
    "erasure_certificates",
    metadata,
    Column("request_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("services", JSON, nullable=False),
    Column("event_id", Uuid, nullable=False),
)
