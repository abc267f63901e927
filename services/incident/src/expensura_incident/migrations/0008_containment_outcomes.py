"""Incident: what the owning services did with its containment requests (SEC-4).

After upgrading, fill it from the owners' logs: `expensura projections rebuild
containment-outcomes`.

Revision ID: incident_0008
Revises: incident_0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "incident_0008"
down_revision = "incident_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "containment_outcomes",
        sa.Column("request_event_id", sa.Uuid, primary_key=True),
        sa.Column("incident_id", sa.Uuid, nullable=False),
        sa.Column("measure", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("carried_out_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_containment_outcomes_incident_id", "containment_outcomes", ["incident_id"])


def downgrade() -> None:
    op.drop_table("containment_outcomes")
