"""Consent: a decision made for a disclosure names its fields, and is redeemed once.

Revision ID: consent_0004
Revises: consent_0003
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "consent_0004"
down_revision = "consent_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("decisions", sa.Column("fields", sa.JSON, nullable=True))
    op.add_column("decisions", sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("decisions", "released_at")
    op.drop_column("decisions", "fields")
