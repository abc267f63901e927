"""Loans: subjects whose e-mail identity saw proven (read model of identity's
`EmailOwnershipProven`), a second gate before an application is received.

Revision ID: loans_0004
Revises: loans_0003
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "loans_0004"
down_revision = "loans_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proven_emails",
        sa.Column("subject_id", sa.Text, primary_key=True),
        sa.Column("proven_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("proven_emails")
