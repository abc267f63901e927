"""Incident: notices on every channel (USE-10). The contact copy gains the customer's
channel choice, push token and mailing address (sealed); each notice records its current
channel and the channels given up on; each attempt gets a row with its channel and state.

Existing rows: contacts have no choice (the default order applies) until identity's next
`NotificationPreferencesSet`; notices in flight continue on e-mail, where they were.

Revision ID: incident_0004
Revises: incident_0003
Create Date: 2026-12-14
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "incident_0004"
down_revision = "incident_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notification_contacts", sa.Column("push_token_sealed", JSONB, nullable=True))
    op.add_column(
        "notification_contacts", sa.Column("mailing_address_sealed", JSONB, nullable=True)
    )
    # The channel order the customer chose (a list of channel names); NULL: no choice.
    op.add_column("notification_contacts", sa.Column("notice_channels", JSONB, nullable=True))
    op.add_column("customer_notices", sa.Column("channel", sa.Text, nullable=True))
    op.add_column(
        "customer_notices",
        sa.Column("channel_attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.add_column(
        "customer_notices",
        sa.Column("exhausted_channels", JSONB, nullable=False, server_default="[]"),
    )
    # Notices sent before channels existed were sent by e-mail.
    op.execute(
        "UPDATE customer_notices SET channel = 'email', channel_attempts = attempts"
        " WHERE attempts > 0"
    )
    op.create_table(
        "customer_notice_attempts",
        sa.Column("notice_id", sa.Uuid, primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("subject_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("provider_ref", sa.Text, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_customer_notice_attempts_subject_id", "customer_notice_attempts", ["subject_id"]
    )


def downgrade() -> None:
    op.drop_table("customer_notice_attempts")
    op.drop_column("customer_notices", "exhausted_channels")
    op.drop_column("customer_notices", "channel_attempts")
    op.drop_column("customer_notices", "channel")
    op.drop_column("notification_contacts", "notice_channels")
    op.drop_column("notification_contacts", "mailing_address_sealed")
    op.drop_column("notification_contacts", "push_token_sealed")
