"""Events a projection could not apply, parked for an operator; what the relay published.

Revision ID: eventstore_0003
Revises: eventstore_0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "eventstore_0003"
down_revision = "eventstore_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Metadata only: ids, types, class names and SQLSTATE codes, never a value from the
    # event or from the failed statement's parameters.
    op.create_table(
        "projection_dead_letters",
        sa.Column("projection", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=True),
        sa.Column("event_type", sa.Text, nullable=True),
        sa.Column("subject_id", sa.Text, nullable=True),
        sa.Column("error_class", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("resolved_by", sa.Text, nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.CheckConstraint(
            "status IN ('parked', 'retried', 'skipped', 'resolved')",
            name="projection_dead_letters_status",
        ),
    )
    op.create_index(
        "projection_dead_letters_status_idx", "projection_dead_letters", ["projection", "status"]
    )
    # The highest offset the broker acknowledged per partition, so that a relay that starts
    # against a broker which lost its data (an in-memory broker restarted) can tell.
    op.create_table(
        "relay_partition_offsets",
        sa.Column("topic", sa.Text, primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("max_offset", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("relay_partition_offsets")
    op.drop_table("projection_dead_letters")
