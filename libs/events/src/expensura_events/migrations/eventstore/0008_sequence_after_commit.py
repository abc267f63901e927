"""Positions assigned after commit: writers commit unsequenced rows concurrently, and a
sequencer integrates them into the log, a batch per transaction.

Until now every append took the log's advisory lock and held it to commit, so each writer's
commit (its fsync) waited for the one before. Now:

- `expensura_stage` is what an append calls inside the writer's transaction. It locks the
  rows of the streams it appends to in `stream_versions` (writers of one stream take turns;
  writers of different streams do not meet), checks that none moved since the records were
  built on them, moves them and inserts the records into `event_log_pending`. No position,
  no chain, no global lock: the transaction commits alongside every other writer's.
- `expensura_sequence` moves committed pending rows into `event_log`, in the order they were
  staged, under the log's advisory lock (transaction-scoped: a sequencer that dies mid-batch
  aborts and frees it, and the rows are still pending). It reads the head, links each record
  (`hash(n) = SHA-256(hash(n-1) || n as 8 bytes || record)`, as chain.py defines it),
  inserts the rows and deletes them from the pending table, in one transaction. Any number
  of sequencers may run: they take turns on the lock, and a later one finds the rows gone.
  It runs as the owner (SECURITY DEFINER): the service role may insert pending rows but not
  delete them.

A pending row leaves its table only into the log: a trigger refuses UPDATE and TRUNCATE, and
a DELETE of a row whose exact record is not in the log (so not even the owner can drop an
acknowledged event before it is sequenced). `event_log` keeps its own triggers and its
NOTIFY at commit, which now fires once per sequencing batch instead of once per writer (a
NOTIFY serialises the commits of the transactions that send it).

Revision ID: eventstore_0008
Revises: eventstore_0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "eventstore_0008"
down_revision = "eventstore_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_log_pending",
        # Staging order: a stream's next version can only be staged after the transaction
        # that staged the one before committed (the stream's row lock), so per stream this
        # order is the stream's order; across streams it is any order commits allow.
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("stream_id", sa.Text, nullable=False),
        sa.Column("stream_version", sa.Integer, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("subject_id", sa.Text, nullable=True, index=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record", sa.LargeBinary, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=True),
        sa.Column("signing_key_id", sa.Text, nullable=True),
        sa.UniqueConstraint(
            "stream_id", "stream_version", name="event_log_pending_stream_version_key"
        ),
    )
    op.execute(
        """
        CREATE FUNCTION expensura_refuse_pending_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'DELETE' AND EXISTS (
               SELECT 1 FROM event_log l
                WHERE l.event_id = OLD.event_id AND l.record = OLD.record) THEN
            RETURN OLD;  -- sequenced: it lives on in the log
          END IF;
          RAISE EXCEPTION 'event_log_pending leaves only into the log: % refused', TG_OP;
        END $$
        """
    )
    op.execute(
        """CREATE TRIGGER event_log_pending_append_only BEFORE UPDATE OR DELETE
           ON event_log_pending FOR EACH ROW EXECUTE FUNCTION expensura_refuse_pending_change()"""
    )
    op.execute(
        """CREATE TRIGGER event_log_pending_no_truncate BEFORE TRUNCATE ON event_log_pending
           FOR EACH STATEMENT EXECUTE FUNCTION expensura_refuse_pending_change()"""
    )
    # Returns (NULL, NULL) when staged; otherwise the first stream that is not at the version
    # its records were built on and the version it is at, having written nothing. The rows
    # of existing streams stay locked by this transaction either way, so a caller that
    # rebuilds on the versions it now reads cannot lose again.
    op.execute(
        r"""
        CREATE FUNCTION expensura_stage(
            event_ids uuid[], stream_ids text[], versions integer[], event_types text[],
            subject_ids text[], recorded_at timestamptz, records bytea[], signatures bytea[],
            key_ids text[], streams text[], bases integer[], tops integer[]
        ) RETURNS TABLE (moved_stream text, moved_version integer)
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
          created text[];
        BEGIN
          -- existing streams' rows, locked in name order (the caller sorts `streams`)
          PERFORM 1 FROM stream_versions sv WHERE sv.stream_id = ANY(streams)
            ORDER BY sv.stream_id FOR UPDATE;
          SELECT s.stream, sv.version INTO moved_stream, moved_version
            FROM unnest(streams, bases) AS s(stream, base)
            JOIN stream_versions sv ON sv.stream_id = s.stream
           WHERE sv.version <> s.base
           LIMIT 1;
          IF moved_stream IS NOT NULL THEN
            RETURN NEXT;
            RETURN;
          END IF;
          -- a stream with base 0 did not exist (or it moved, above): create it, unless a
          -- writer that has not committed yet is creating it too (then it waits for it)
          WITH fresh AS (
            INSERT INTO stream_versions (stream_id, version)
            SELECT s.stream, s.top FROM unnest(streams, bases, tops) AS s(stream, base, top)
             WHERE s.base = 0
            ON CONFLICT (stream_id) DO NOTHING
            RETURNING stream_id
          )
          SELECT coalesce(array_agg(stream_id), '{}') INTO created FROM fresh;
          SELECT s.stream, sv.version INTO moved_stream, moved_version
            FROM unnest(streams, bases) AS s(stream, base)
            JOIN stream_versions sv ON sv.stream_id = s.stream
           WHERE s.base = 0 AND NOT s.stream = ANY(created)
           LIMIT 1;
          IF moved_stream IS NOT NULL THEN
            DELETE FROM stream_versions WHERE stream_id = ANY(created);  -- ours, uncommitted
            RETURN NEXT;
            RETURN;
          END IF;
          UPDATE stream_versions sv SET version = s.top
            FROM unnest(streams, bases, tops) AS s(stream, base, top)
           WHERE sv.stream_id = s.stream AND s.base <> 0;
          INSERT INTO event_log_pending (event_id, stream_id, stream_version, event_type,
                                         subject_id, recorded_at, record, signature,
                                         signing_key_id)
          SELECT r.event_id, r.stream_id, r.version, r.event_type, r.subject_id, recorded_at,
                 r.record, r.signature, r.key_id
            FROM unnest(event_ids, stream_ids, versions, event_types, subject_ids, records,
                        signatures, key_ids)
                 WITH ORDINALITY AS r(event_id, stream_id, version, event_type, subject_id,
                                      record, signature, key_id, i)
           ORDER BY r.i;
          RETURN NEXT;  -- (NULL, NULL): staged
        END $$
        """
    )
    # The lock key is store.py's APPEND_LOCK ("EXPENSUR"). Each statement of a VOLATILE
    # function takes a new snapshot under READ COMMITTED, so what it reads after the lock is
    # every pending row committed by then, and nothing a previous sequencer moved.
    op.execute(
        r"""
        CREATE FUNCTION expensura_sequence(max_rows integer)
        RETURNS TABLE (moved integer, head_seq bigint)
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$
        DECLARE
          prev bytea;
          ids bigint[];
          recs bytea[];
          hashes bytea[] := '{}';
        BEGIN
          IF NOT EXISTS (SELECT 1 FROM event_log_pending) THEN
            moved := 0;
            SELECT l.seq INTO head_seq FROM event_log l ORDER BY l.seq DESC LIMIT 1;
            RETURN NEXT;  -- head_seq NULL: an empty log
            RETURN;
          END IF;
          PERFORM pg_advisory_xact_lock(4996832045164614994);
          SELECT array_agg(p.id ORDER BY p.id), array_agg(p.record ORDER BY p.id)
            INTO ids, recs
            FROM (SELECT id, record FROM event_log_pending ORDER BY id LIMIT max_rows) p;
          SELECT l.seq, l.hash INTO head_seq, prev FROM event_log l ORDER BY l.seq DESC LIMIT 1;
          IF ids IS NULL THEN
            moved := 0;
            RETURN NEXT;
            RETURN;
          END IF;
          IF head_seq IS NULL THEN
            head_seq := 0;
            prev := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
          END IF;
          FOR i IN 1..cardinality(ids) LOOP
            prev := sha256(prev || int8send(head_seq + i) || recs[i]);
            hashes := hashes || prev;
          END LOOP;
          INSERT INTO event_log (seq, event_id, stream_id, stream_version, event_type,
                                 subject_id, recorded_at, record, hash, signature,
                                 signing_key_id)
          SELECT head_seq + t.i, p.event_id, p.stream_id, p.stream_version, p.event_type,
                 p.subject_id, p.recorded_at, p.record, t.hash, p.signature, p.signing_key_id
            FROM unnest(ids, hashes) WITH ORDINALITY AS t(id, hash, i)
            JOIN event_log_pending p ON p.id = t.id
           ORDER BY t.i;
          DELETE FROM event_log_pending WHERE id = ANY(ids);
          moved := cardinality(ids);
          head_seq := head_seq + moved;
          RETURN NEXT;
        END $$
        """
    )
    op.execute(
        "DROP FUNCTION expensura_append(uuid[], text[], integer[], text[], text[], timestamptz,"
        " bytea[], bytea[], text[], text[], integer[])"
    )


def downgrade() -> None:
    raise NotImplementedError(
        "eventstore_0008 has no downgrade: rows may be pending, and the append of 0007 "
        "cannot see them"
    )
