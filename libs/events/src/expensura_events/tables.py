"""Tables the library owns in every service's database (and the local key store's).

The Alembic migrations under `migrations/` create them; these Core definitions are what the
code queries.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
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
    # The appending service's Ed25519 signature over the record (authenticity.py).
    Column("signature", LargeBinary, nullable=True),
    Column("signing_key_id", Text, nullable=True),
    UniqueConstraint("stream_id", "stream_version", name="event_log_stream_version_key"),
)

# Appended and committed, not yet in the log (eventstore_0008): a sequencer moves these rows
# into `event_log`, in `id` order, giving them their positions and links. Readers of a
# stream or subject see them too (`EventStore.read_stream`); readers of the log's order
# (the relay, the feeds, `log verify`) see only what is sequenced.
event_log_pending = Table(
    "event_log_pending",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("stream_id", Text, nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("subject_id", Text, nullable=True, index=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("record", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=True),
    Column("signing_key_id", Text, nullable=True),
)

# Each stream's current version (eventstore_0007): what an append checks and moves, by key,
# instead of `max(stream_version)` over the log.
stream_versions = Table(
    "stream_versions",
    metadata,
    Column("stream_id", Text, primary_key=True),
    Column("version", Integer, nullable=False),
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
    # When its source recorded the event, from the signed record (None: a dead letter an
    # operator skipped, whose record may not be genuine). Only signed times move the floor.
    Column("recorded_at", DateTime(timezone=True), nullable=True),
    Index("projection_inbox_by_recorded_at", "projection", "source", "recorded_at"),
)

# Per projection and source: every event the source recorded at or before `recorded_at`
# counts as applied (a redelivery of one is a duplicate), so its inbox rows could go. Raised
# by the retention purge only (projections.py, `InboxRetention`); a rebuild removes it.
projection_inbox_floors = Table(
    "projection_inbox_floors",
    metadata,
    Column("projection", Text, primary_key=True),
    Column("source", Text, primary_key=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Events a projection could not apply (see deadletters.py). Metadata only: never a value
# from the event or from the failed statement.
projection_dead_letters = Table(
    "projection_dead_letters",
    metadata,
    Column("projection", Text, primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("source", Text, nullable=False),
    Column("seq", BigInteger, nullable=True),
    Column("event_type", Text, nullable=True),
    Column("subject_id", Text, nullable=True),
    Column("error_class", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("first_failed_at", DateTime(timezone=True), nullable=False),
    Column("last_failed_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status", Text, nullable=False),  # parked, retried, skipped, resolved
    Column("resolved_by", Text, nullable=True),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("reason", Text, nullable=True),
)

# The highest offset the broker acknowledged per partition of the relay's topic: a broker
# that answers with less has lost data, even after this process restarted.
relay_partition_offsets = Table(
    "relay_partition_offsets",
    metadata,
    Column("topic", Text, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("max_offset", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

keystore_metadata = MetaData()

# The local key-management implementation (production: a KMS such as Vault transit).
subject_keys = Table(
    "subject_keys",
    keystore_metadata,
    Column("subject_id", Text, primary_key=True),
    # The writing service's role: it seals with this key; others open it only as declared
    # readers (`subject_key_readers`); "*" for keys from before keys had owners (keystore_0004).
    Column("owner", Text, primary_key=True, server_default=text("current_user")),
    Column("key_id", Uuid, nullable=False),
    Column("kek_id", Text, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=True),  # NULL once destroyed
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("destroyed_at", DateTime(timezone=True), nullable=True),
)

# Which owners' keys a role may open besides its own: written by provisioning from the
# projections that open other services' personal fields (`Projection.opens_personal_data`).
subject_key_readers = Table(
    "subject_key_readers",
    keystore_metadata,
    Column("owner", Text, primary_key=True),
    Column("reader", Text, primary_key=True),
)

# Each service's own secrets (look-up HMAC key, pseudonym key, token-key and TOTP wrapping
# keys): random, wrapped by the master key, so they outlive a master-key rotation. A service's
# role sees only its own rows (row-level security on `owner`, which defaults to the role).
service_secrets = Table(
    "service_secrets",
    keystore_metadata,
    Column("owner", Text, primary_key=True, server_default=text("current_user")),
    Column("label", Text, primary_key=True),
    Column("kek_id", Text, nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
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
