"""Sharing gateway: the loans' balance-dispute cases it knows (a read model of
`loans.BalanceDisputeOpened`): a dispute-resolution disclosure must name one of its subject's.

Revision ID: sharing_0004
Revises: sharing_0003
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "sharing_0004"
down_revision = "sharing_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dispute_cases",
        sa.Column("case_reference", sa.Text, primary_key=True),
        sa.Column("subject_id", sa.Text, nullable=False, index=True),
        sa.Column("loan_id", sa.Uuid, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dispute_cases")
