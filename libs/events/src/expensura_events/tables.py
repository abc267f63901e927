"""Tables the library owns in every service's database (and the local key store's).

The Alembic migrations under `migrations/` create them; these Core definitions are what the
code queries.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)

metadata = MetaData()

# The append-only log. `record` holds the exact bytes that were hashed: the canonical JSON
# of the envelope with personal fields already encrypted. The other columns are copies for
# querying; the verifier checks that they agree with the bytes.
event_log = Table(
    "event_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("stream_id", Text, nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("subject_id", Text, nullable=True, index=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("record", LargeBinary, nullable=False),
    Column("hash", LargeBinary, nullable=False),
    UniqueConstraint("stream_id", "stream_version", name="event_log_stream_version_key"),
)

# How far the outbox relay has published the log to the service's topic.
relay_position = Table(
    "relay_position",
    metadata,
    Column("topic", Text, primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Exactly-once effect: a projection's read-model write and this row commit together.
projection_inbox = Table(
    "projection_inbox",
    metadata,
    Column("projection", Text, primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("source", Text, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

keystore_metadata = MetaData()

# The local key-management implementation (production: a KMS such as Vault transit).
subject_keys = Table(
    "subject_keys",
    keystore_metadata,
    Column("subject_id", Text, primary_key=True),
    Column("key_id", Uuid, nullable=False),
    Column("kek_id", Text, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=True),  # NULL once destroyed
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("destroyed_at", DateTime(timezone=True), nullable=True),
)

# Subjects whose processing stopped (cancellation) or who were erased, in every service.
subject_restrictions = Table(
    "subject_restrictions",
    metadata,
    Column("subject_id", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("request_id", Uuid, nullable=False),
    Column("since", DateTime(timezone=True), nullable=False),
)
