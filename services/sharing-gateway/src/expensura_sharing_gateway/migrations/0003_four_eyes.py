"""Sharing gateway: partners, agreements and credentials wait for a second officer's approval.

Rows from before this revision took effect when made and stay so (`not-required`), as their
events say.

Revision ID: sharing_0003
Revises: sharing_0002
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "sharing_0003"
down_revision = "sharing_0002"
branch_labels = None
depends_on = None

TABLES = ("partners", "agreements", "partner_credentials")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(
            table, sa.Column("approval", sa.Text, nullable=False, server_default="not-required")
        )
        op.add_column(table, sa.Column("requested_by", sa.Text, nullable=True))
        op.add_column(table, sa.Column("decided_by", sa.Text, nullable=True))
        op.add_column(table, sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        for column in ("decided_at", "decided_by", "requested_by", "approval"):
            op.drop_column(table, column)
