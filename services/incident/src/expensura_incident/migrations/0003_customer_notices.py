"""Incident: customer notices to deliver (USE-10), their bodies sealed with the subject's key.

A new read model, empty at first: the `customer-notices` projection fills it from loans'
`CustomerNoticeRequested` events as it catches up with loans' log.

Revision ID: incident_0003
Revises: incident_0002
Create Date: 2026-12-12
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "incident_0003"
down_revision = "incident_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_notices",
        sa.Column("notice_id", sa.Uuid, primary_key=True),
        sa.Column("subject_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body_sealed", JSONB, nullable=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_by_event", sa.Uuid, nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_customer_notices_subject_id", "customer_notices", ["subject_id"])
    # The sender's look-up: only rows with something left to do.
    op.create_index(
        "ix_customer_notices_due",
        "customer_notices",
        ["next_attempt_at"],
        postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("customer_notices")
