"""Loans: the legal retention holds placed on an erased subject's records, and when each
was released (RUL-2, USE-3).

Revision ID: loans_0007
Revises: loans_0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "loans_0007"
down_revision = "loans_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_holds",
        sa.Column("subject_id", sa.Text, primary_key=True),
        sa.Column("hold", sa.Text, primary_key=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
    )
    # The worker's question: which holds not yet released have ended.
    op.create_index(
        "retention_holds_pending",
        "retention_holds",
        ["ends_at"],
        postgresql_where=sa.text("released_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("retention_holds")
