"""Identity: the legal retention holds other services ended after an erasure
(`platform.RetentionHoldEnded`), so the certificate shows each held class as erased.

Revision ID: identity_0010
Revises: identity_0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "identity_0010"
down_revision = "identity_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_holds_ended",
        sa.Column("subject_id", sa.Text, primary_key=True),
        sa.Column("service", sa.Text, primary_key=True),
        sa.Column("hold", sa.Text, primary_key=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("retention_holds_ended")
