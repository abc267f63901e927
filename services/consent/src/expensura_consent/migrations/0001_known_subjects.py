"""Consent: the subject index projected from identity.

Revision ID: consent_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "consent_0001"
down_revision = None
branch_labels = ("consent",)
depends_on = "eventstore_0001"


def upgrade() -> None:
    op.create_table(
        "known_subjects",
        sa.Column("subject_id", sa.Text, primary_key=True),
        sa.Column("account_opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("channel", sa.Text, nullable=True),
        sa.Column("identity_events", sa.Integer, nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("known_subjects")
