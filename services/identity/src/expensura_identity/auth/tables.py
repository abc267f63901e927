"""Sessions: signing keys, refresh-token families, sign-in attempts."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, LargeBinary, MetaData, Table, Text, Uuid

from expensura_events.signing import signing_key_table

metadata = MetaData()

# Ed25519 keys that sign access tokens; private halves wrapped by the master key.
signing_keys = signing_key_table("signing_keys", metadata)

# Refresh tokens are stored only as hashes. A family is one sign-in; presenting a token
# that was already used revokes the whole family (RFC 6819 §5.2.2.3, OAuth 2.1 rotation).
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", LargeBinary, primary_key=True),
    Column("family_id", Uuid, nullable=False, index=True),
    Column("principal_kind", Text, nullable=False),
    Column("principal_id", Text, nullable=False),
    Column("roles", Text, nullable=False),
    Column("amr", Text, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

sign_in_attempts = Table(
    "sign_in_attempts",
    metadata,
    Column("key", LargeBinary, nullable=False),  # keyed hash of the e-mail, or of the address
    Column("at", DateTime(timezone=True), nullable=False),
    Index("sign_in_attempts_key_at", "key", "at"),
)
