"""Subjects whose processing has stopped (account cancellation), in every service.

Revision ID: eventstore_0002
Revises: eventstore_0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "eventstore_0002"
down_revision = "eventstore_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_restrictions",
        sa.Column("subject_id", sa.Text, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("request_id", sa.Uuid, nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("subject_restrictions")
