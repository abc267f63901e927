"""Loans: verified subjects (from identity) and loan applications.

Revision ID: loans_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "loans_0001"
down_revision = None
branch_labels = ("loans",)
depends_on = "eventstore_0002"


def upgrade() -> None:
    op.create_table(
        "verified_subjects",
        sa.Column("subject_id", sa.Text, primary_key=True),
        sa.Column("request_id", sa.Uuid, nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "loan_applications",
        sa.Column("application_id", sa.Uuid, primary_key=True),
        sa.Column("subject_id", sa.Text, nullable=False, index=True),
        sa.Column("amount_cents", sa.Text, nullable=False),
        sa.Column("term_months", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("loan_applications")
    op.drop_table("verified_subjects")
