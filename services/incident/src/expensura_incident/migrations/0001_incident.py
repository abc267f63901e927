"""Incident: contact details for notices, projected from identity.

Revision ID: incident_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "incident_0001"
down_revision = None
branch_labels = ("incident",)
depends_on = "eventstore_0002"


def upgrade() -> None:
    op.create_table(
        "notification_contacts",
        sa.Column("subject_id", sa.Text, primary_key=True),
        sa.Column("email", sa.Text, nullable=True),
        sa.Column("phone", sa.Text, nullable=True),
        sa.Column("updated_from_event", sa.Uuid, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notification_contacts")
