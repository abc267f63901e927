"""Identity: cancellation requests, erasure confirmations and certificates.

Revision ID: identity_0006
Revises: identity_0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "identity_0006"
down_revision = "identity_0002"
branch_labels = None
depends_on = "eventstore_0002"


def upgrade() -> None:
    op.create_table(
        "cancellation_requests",
        sa.Column("request_id", sa.Uuid, primary_key=True),
        sa.Column("subject_id", sa.Text, nullable=False, index=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cooling_off_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erasure_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index(
        "cancellation_one_open_per_subject",
        "cancellation_requests",
        ["subject_id"],
        unique=True,
        postgresql_where=sa.text("state NOT IN ('withdrawn', 'certified')"),
    )
    op.create_table(
        "erasure_confirmations",
        sa.Column("request_id", sa.Uuid, primary_key=True),
        sa.Column("service", sa.Text, primary_key=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purged", sa.JSON, nullable=False),
        sa.Column("retained", sa.JSON, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
    )
    op.create_table(
        "erasure_certificates",
        sa.Column("request_id", sa.Uuid, primary_key=True),
        sa.Column("subject_id", sa.Text, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("services", sa.JSON, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("erasure_certificates")
    op.drop_table("erasure_confirmations")
    op.drop_table("cancellation_requests")
