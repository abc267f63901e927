"""Identity's account state. Contact details are not stored here in plaintext: they live
encrypted in the log; `email_lookup` is a keyed hash used only to refuse duplicates."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, LargeBinary, MetaData, Table, Text, Uuid

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", Uuid, primary_key=True),
    Column("email_lookup", LargeBinary, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
)
