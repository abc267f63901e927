"""Consent: records, legal grounds, decisions, policy versions, receipt keys.

Revision ID: consent_0002
Revises: consent_0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "consent_0002"
down_revision = "consent_0001"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "consent_records",
        sa.Column("consent_id", sa.Uuid, primary_key=True),
        sa.Column("subject_id", sa.Text, nullable=False, index=True),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("purpose_version", sa.Integer, nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("policy_version", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        _ts("given_at"),
        _ts("expires_at", nullable=True),
        _ts("updated_at"),
    )
    op.create_table(
        "ground_invocations",
        sa.Column("invocation_id", sa.Uuid, primary_key=True),
        sa.Column("subject_id", sa.Text, nullable=False, index=True),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("ground", sa.Text, nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("evidence_reference", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("invoked_by_kind", sa.Text, nullable=False),
        sa.Column("invoked_by_id", sa.Text, nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("revoked_at", nullable=True),
    )
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.Uuid, primary_key=True),
        sa.Column("subject_id", sa.Text, nullable=False, index=True),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("recipient", sa.Text, nullable=True),
        sa.Column("requester", sa.Text, nullable=False),
        sa.Column("allowed", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("consent_id", sa.Uuid, nullable=True),
        sa.Column("invocation_id", sa.Uuid, nullable=True),
        _ts("decided_at"),
    )
    op.create_table(
        "policy_versions",
        sa.Column("version", sa.Text, primary_key=True),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        _ts("effective_at"),
        _ts("published_at"),
    )
    op.create_table(
        "policy_notifications",
        sa.Column("version", sa.Text, primary_key=True),
        sa.Column("subject_id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False),
        _ts("requested_at"),
    )
    op.create_table(
        "policy_responses",
        sa.Column("version", sa.Text, primary_key=True),
        sa.Column("subject_id", sa.Text, primary_key=True),
        sa.Column("accepted", sa.Boolean, nullable=False),
        _ts("responded_at"),
    )
    op.create_table(
        "receipt_signing_keys",
        sa.Column("kid", sa.Text, primary_key=True),
        sa.Column("private_key_wrapped", sa.LargeBinary, nullable=False),
        sa.Column("public_jwk", sa.Text, nullable=False),
        _ts("created_at"),
        _ts("retired_at", nullable=True),
    )


def downgrade() -> None:
    for table in (
        "receipt_signing_keys",
        "policy_responses",
        "policy_notifications",
        "policy_versions",
        "decisions",
        "ground_invocations",
        "consent_records",
    ):
        op.drop_table(table)
