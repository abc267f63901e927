"""Appends that hold the log's lock for one statement's work: stream versions in a table,
and the sequencing step (lock, version check, head, chain, insert) as one function call.

`stream_versions` holds each stream's current version, so an append reads it by key before
taking the lock (and builds, encrypts and signs its records then) instead of `max()` inside
it. `expensura_append` is the only part that runs under the append lock: it takes the lock,
checks that no stream moved since the records were built, reads the head, links each record
(`hash(n) = SHA-256(hash(n-1) || n as 8 bytes || record)`, as chain.py defines it), inserts
the rows and moves the stream versions, all in one round trip. See store.py, `append`.

Revision ID: eventstore_0007
Revises: eventstore_0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "eventstore_0007"
down_revision = "eventstore_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_versions",
        sa.Column("stream_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.CheckConstraint("version > 0", name="stream_versions_positive"),
    )
    op.execute(
        "INSERT INTO stream_versions (stream_id, version)"
        " SELECT stream_id, max(stream_version) FROM event_log GROUP BY stream_id"
    )
    # The lock key is store.py's APPEND_LOCK ("EXPENSUR"). Each statement of a VOLATILE
    # function takes a new snapshot under READ COMMITTED, so what it reads after the lock is
    # what the previous holder committed. Returns the first sequence number assigned, or
    # (when a stream is not at the version its records were built on) the stream and the
    # version it is at, having changed nothing.
    op.execute(
        r"""
        CREATE FUNCTION expensura_append(
            event_ids uuid[], stream_ids text[], versions integer[], event_types text[],
            subject_ids text[], recorded_at timestamptz, records bytea[], signatures bytea[],
            key_ids text[], streams text[], bases integer[]
        ) RETURNS TABLE (first_seq bigint, moved_stream text, moved_version integer)
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
          head_seq bigint;
          prev bytea;
          hashes bytea[] := '{}';
          n integer := cardinality(records);
        BEGIN
          PERFORM pg_advisory_xact_lock(4996832045164614994);
          SELECT s.stream, coalesce(v.version, 0) INTO moved_stream, moved_version
            FROM unnest(streams, bases) AS s(stream, base)
            LEFT JOIN stream_versions v ON v.stream_id = s.stream
           WHERE coalesce(v.version, 0) <> s.base
           LIMIT 1;
          IF moved_stream IS NOT NULL THEN
            first_seq := NULL;
            RETURN NEXT;
            RETURN;
          END IF;
          SELECT l.seq, l.hash INTO head_seq, prev FROM event_log l ORDER BY l.seq DESC LIMIT 1;
          IF head_seq IS NULL THEN
            head_seq := 0;
            prev := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
          END IF;
          FOR i IN 1..n LOOP
            prev := sha256(prev || int8send(head_seq + i) || records[i]);
            hashes := hashes || prev;
          END LOOP;
          INSERT INTO event_log (seq, event_id, stream_id, stream_version, event_type,
                                 subject_id, recorded_at, record, hash, signature,
                                 signing_key_id)
          SELECT head_seq + r.i, r.event_id, r.stream_id, r.version, r.event_type,
                 r.subject_id, recorded_at, r.record, r.hash, r.signature, r.key_id
            FROM unnest(event_ids, stream_ids, versions, event_types, subject_ids, records,
                        hashes, signatures, key_ids)
                 WITH ORDINALITY AS r(event_id, stream_id, version, event_type, subject_id,
                                      record, hash, signature, key_id, i);
          INSERT INTO stream_versions AS sv (stream_id, version)
          SELECT r.stream_id, max(r.version)
            FROM unnest(stream_ids, versions) AS r(stream_id, version)
           GROUP BY r.stream_id
          ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version;
          first_seq := head_seq + 1;
          moved_stream := NULL;
          moved_version := NULL;
          RETURN NEXT;
        END $$
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION expensura_append(uuid[], text[], integer[], text[], text[], timestamptz,"
        " bytea[], bytea[], text[], text[], integer[])"
    )
    op.drop_table("stream_versions")
