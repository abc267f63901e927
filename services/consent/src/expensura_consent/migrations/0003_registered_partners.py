"""Consent: the partners it learns from the sharing gateway's log (valid recipients).

Revision ID: consent_0003
Revises: consent_0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "consent_0003"
down_revision = "consent_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registered_partners",
        sa.Column("partner_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registered_partners")
