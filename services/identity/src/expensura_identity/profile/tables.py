"""Anonymous interactions (no identifier, hour precision) and device/feedback indexes (ids
and channels only: the values live encrypted in the log)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, MetaData, Table, Text, Uuid

metadata = MetaData()

interaction_events = Table(
    "interaction_events",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("type", Text, nullable=False),
    Column("screen", Text, nullable=False),
    Column("element", Text, nullable=True),
    Column("hour", DateTime(timezone=True), nullable=False),
    Column("channel", Text, nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("device_id", Uuid, primary_key=True),
    Column("subject_id", Text, nullable=False, index=True),
    Column("tracking_allowed", Boolean, nullable=False),
    Column("channel", Text, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)
