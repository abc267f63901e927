"""The event store: append-only log, relay position, projection inbox.

Revision ID: eventstore_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "eventstore_0001"
down_revision = None
branch_labels = ("eventstore",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("stream_id", sa.Text, nullable=False),
        sa.Column("stream_version", sa.Integer, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("subject_id", sa.Text, nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record", sa.LargeBinary, nullable=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("stream_id", "stream_version", name="event_log_stream_version_key"),
        sa.CheckConstraint("seq > 0", name="event_log_seq_positive"),
    )
    op.create_index("event_log_subject_idx", "event_log", ["subject_id", "seq"])
    # Append-only for everyone, whatever their grants: the service role additionally has no
    # UPDATE/DELETE/TRUNCATE privilege (granted at provisioning).
    op.execute("""
        CREATE FUNCTION expensura_refuse_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'event_log is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
        END $$""")
    op.execute("""CREATE TRIGGER event_log_append_only BEFORE UPDATE OR DELETE ON event_log
                  FOR EACH ROW EXECUTE FUNCTION expensura_refuse_log_change()""")
    op.execute("""CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON event_log
                  FOR EACH STATEMENT EXECUTE FUNCTION expensura_refuse_log_change()""")
    op.create_table(
        "relay_position",
        sa.Column("topic", sa.Text, primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "projection_inbox",
        sa.Column("projection", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the audit log is never dropped by a migration")
