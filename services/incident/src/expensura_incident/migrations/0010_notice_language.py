"""Incident: the language each customer reads notices in (USE-10), followed from identity's
`NotificationPreferencesSet` (its optional `language`). NULL until the customer's next
choice: `expensura projections rebuild notification-contacts` fills it from the log.

Revision ID: incident_0010
Revises: incident_0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "incident_0010"
down_revision = "incident_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notification_contacts", sa.Column("notice_language", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("notification_contacts", "notice_language")
