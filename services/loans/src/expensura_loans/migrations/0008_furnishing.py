"""Credit reporting (SHR-4): the monthly furnishing runs, each account's line (sealed with its
borrower's key), and bureau disputes with their investigation deadline.

Revision ID: loans_0008
Revises: loans_0007
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "loans_0008"
down_revision = "loans_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "furnishing_runs",
        sa.Column("period", sa.Text, primary_key=True),
        sa.Column("header", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("record_count", sa.Integer, nullable=False),
        sa.Column("status_counts", JSONB, nullable=False),
        sa.Column("produced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("bureau_file_id", sa.Text, nullable=True),
        sa.Column("delivery_attempts", sa.Integer, nullable=False),
        sa.Column("last_delivery_error", sa.Text, nullable=True),
    )
    op.create_table(
        "furnished_accounts",
        sa.Column("period", sa.Text, sa.ForeignKey("furnishing_runs.period"), primary_key=True),
        sa.Column("account_number", sa.Text, primary_key=True),
        sa.Column("loan_id", sa.Uuid, nullable=False, index=True),
        sa.Column("subject_id", sa.Text, nullable=False, index=True),
        sa.Column("record_sealed", JSONB, nullable=False),
    )
    op.create_table(
        "bureau_disputes",
        sa.Column("dispute_id", sa.Text, primary_key=True),
        sa.Column("account_number", sa.Text, nullable=False, index=True),
        sa.Column("loan_id", sa.Uuid, nullable=True),
        sa.Column("subject_id", sa.Text, nullable=False, index=True),
        sa.Column("reason_sealed", JSONB, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("records_agree", sa.Boolean, nullable=True),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.Column("correction_sealed", JSONB, nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.Text, nullable=True),
        sa.Column("answer_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reported_in", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("bureau_disputes")
    op.drop_table("furnished_accounts")
    op.drop_table("furnishing_runs")
