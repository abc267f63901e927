"""Incident: incidents raised automatically (SEC-4). Each occurrence of a cause (a risk
signal, a forged record, a broken log) and the incident it raised or was attached to.

Revision ID: incident_0009
Revises: incident_0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "incident_0009"
down_revision = "incident_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auto_raised_causes",
        sa.Column("occurrence", sa.Text, primary_key=True),
        sa.Column("dedupe_key", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("incident_id", sa.Uuid, sa.ForeignKey("incidents.incident_id"), nullable=False),
        sa.Column("raised", sa.Boolean, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_auto_raised_causes_key", "auto_raised_causes", ["dedupe_key", "at"])


def downgrade() -> None:
    op.drop_table("auto_raised_causes")
