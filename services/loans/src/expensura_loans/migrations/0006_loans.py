"""Loans: the loans offered on approved applications, and the payments applied to them
(an idempotency key per loan makes a retried payment apply once).

Revision ID: loans_0006
Revises: loans_0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "loans_0006"
down_revision = "loans_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loans",
        sa.Column("loan_id", sa.Uuid, primary_key=True),
        sa.Column("application_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("subject_id", sa.Text, nullable=False, index=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("terms_sealed", JSONB, nullable=False),
        sa.Column("balance_sealed", JSONB, nullable=True),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "loan_payments",
        sa.Column("loan_id", sa.Uuid, sa.ForeignKey("loans.loan_id"), primary_key=True),
        sa.Column("idempotency_key", sa.Text, primary_key=True),
        sa.Column("subject_id", sa.Text, nullable=False, index=True),
        sa.Column("applied_sealed", JSONB, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("loan_payments")
    op.drop_table("loans")
