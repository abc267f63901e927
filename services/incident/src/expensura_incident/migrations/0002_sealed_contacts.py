"""Incident: notification contacts sealed with the subject's key, the e-mail compared by a
keyed HMAC; the plaintext columns go.

A migration holds no keys, so it cannot seal the rows it finds: it empties the read model
(nothing is lost, identity's log holds every contact event) and the operator refills it with
`expensura projections rebuild notification-contacts` after the upgrade.

Revision ID: incident_0002
Revises: incident_0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "incident_0002"
down_revision = "incident_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM notification_contacts")
    op.drop_column("notification_contacts", "email")
    op.drop_column("notification_contacts", "phone")
    op.add_column("notification_contacts", sa.Column("email_sealed", JSONB, nullable=True))
    op.add_column("notification_contacts", sa.Column("phone_sealed", JSONB, nullable=True))
    op.add_column("notification_contacts", sa.Column("email_hmac", sa.Text, nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM notification_contacts")
    op.drop_column("notification_contacts", "email_hmac")
    op.drop_column("notification_contacts", "phone_sealed")
    op.drop_column("notification_contacts", "email_sealed")
    op.add_column("notification_contacts", sa.Column("phone", sa.Text, nullable=True))
    op.add_column("notification_contacts", sa.Column("email", sa.Text, nullable=True))
