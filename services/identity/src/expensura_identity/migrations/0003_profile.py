"""Identity: anonymous interactions, device index.

Revision ID: identity_0003
Revises: identity_0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "identity_0003"
down_revision = "identity_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "interaction_events",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("screen", sa.Text, nullable=False),
        sa.Column("element", sa.Text, nullable=True),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
    )
    op.create_table(
        "devices",
        sa.Column("device_id", sa.Uuid, primary_key=True),
        sa.Column("subject_id", sa.Text, nullable=False, index=True),
        sa.Column("tracking_allowed", sa.Boolean, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("devices")
    op.drop_table("interaction_events")
