"""Staff accounts. The TOTP secret is wrapped by the master key; recovery codes are hashes."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, LargeBinary, MetaData, Table, Text

metadata = MetaData()

staff_members = Table(
    "staff_members",
    metadata,
    Column("staff_id", Text, primary_key=True),
    Column("email_lookup", LargeBinary, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("roles", JSON, nullable=False),
    Column("totp_secret_wrapped", LargeBinary, nullable=True),
    Column("totp_enrolled", Boolean, nullable=False),
    Column("recovery_codes", JSON, nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
