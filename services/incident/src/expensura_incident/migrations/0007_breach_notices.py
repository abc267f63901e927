"""Incident: breach notices (SEC-5, USE-10). Which customer notices are an incident's
breach notices, and each incident's public notice.

Revision ID: incident_0007
Revises: incident_0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "incident_0007"
down_revision = "incident_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breach_notices",
        sa.Column("notice_id", sa.Uuid, primary_key=True),
        sa.Column("incident_id", sa.Uuid, nullable=False),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_breach_notices_incident_id", "breach_notices", ["incident_id"])
    op.create_table(
        "public_notices",
        sa.Column("incident_id", sa.Uuid, primary_key=True),
        sa.Column("public_notice_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("reasons", JSONB, nullable=False),
        sa.Column("subjects", sa.Integer, nullable=False),
        sa.Column("unreachable", sa.Integer, nullable=False),
        sa.Column("substitute", sa.Boolean, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("public_notices")
    op.drop_index("ix_breach_notices_incident_id", table_name="breach_notices")
    op.drop_table("breach_notices")
