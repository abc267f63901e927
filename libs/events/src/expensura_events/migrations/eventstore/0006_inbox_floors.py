"""Bound the projection inbox: each inbox row keeps when its event was recorded (from the
signed record), and `projection_inbox_floors` keeps, per projection and source, the time at or
before which every event counts as applied, so the rows before it can be deleted
(projections.py, `InboxRetention`).

Revision ID: eventstore_0006
Revises: eventstore_0005
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "eventstore_0006"
down_revision = "eventstore_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "projection_inbox", sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "projection_inbox_by_recorded_at",
        "projection_inbox",
        ["projection", "source", "recorded_at"],
    )
    op.create_table(
        "projection_inbox_floors",
        sa.Column("projection", sa.Text, primary_key=True),
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("projection_inbox_floors")
    op.drop_index("projection_inbox_by_recorded_at", "projection_inbox")
    op.drop_column("projection_inbox", "recorded_at")
