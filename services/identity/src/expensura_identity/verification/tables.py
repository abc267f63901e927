"""Verification requests: state and retry bookkeeping only. The identifying data lives
encrypted in the request's event; the worker reads it back from the log to call the agency."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, Uuid

metadata = MetaData()

verification_requests = Table(
    "verification_requests",
    metadata,
    Column("request_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("state", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
