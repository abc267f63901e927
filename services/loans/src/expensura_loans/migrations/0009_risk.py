"""Fraud and risk signals (USE-6): what the signals see of each application attempt (keyed
hashes of its device and bank card), payout-account changes, and the holds for a risk
analyst's review.

Revision ID: loans_0009
Revises: loans_0008
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "loans_0009"
down_revision = "loans_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_observations",
        sa.Column("observation_id", sa.Uuid, primary_key=True),
        sa.Column("application_id", sa.Uuid, nullable=True, unique=True),
        sa.Column("subject_id", sa.Text, nullable=False, index=True),
        sa.Column("device_hash", sa.Text, nullable=False, index=True),
        sa.Column("card_hash", sa.Text, nullable=False, index=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "risk_payout_account_changes",
        sa.Column("change_id", sa.Uuid, primary_key=True),
        sa.Column("loan_id", sa.Uuid, nullable=False, index=True),
        sa.Column("subject_id", sa.Text, nullable=False, index=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "risk_reviews",
        sa.Column("review_id", sa.Uuid, primary_key=True),
        sa.Column("application_id", sa.Uuid, nullable=False, index=True),
        sa.Column("subject_id", sa.Text, nullable=False, index=True),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("loan_id", sa.Uuid, nullable=True),
        sa.Column("signals", JSONB, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("concluded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("concluded_by", sa.Text, nullable=True),
    )
    op.create_index(
        "risk_reviews_one_open",
        "risk_reviews",
        ["application_id"],
        unique=True,
        postgresql_where=sa.text("state = 'open'"),
    )


def downgrade() -> None:
    op.drop_table("risk_reviews")
    op.drop_table("risk_payout_account_changes")
    op.drop_table("risk_observations")
