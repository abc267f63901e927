"""Sharing gateway: partners, agreements, credentials, nonces, disclosures, releases.

Revision ID: sharing_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "sharing_0001"
down_revision = None
branch_labels = ("sharing-gateway",)
depends_on = "eventstore_0002"


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("partner_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "agreements",
        sa.Column("agreement_id", sa.Uuid, primary_key=True),
        sa.Column("partner_id", sa.Text, nullable=False, index=True),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("purposes", sa.JSON, nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("inbound", sa.Boolean, nullable=False),
        _ts("starts_at"),
        _ts("ends_at"),
    )
    op.create_table(
        "partner_credentials",
        sa.Column("client_id", sa.Text, primary_key=True),
        sa.Column("partner_id", sa.Text, nullable=False, index=True),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("revoked_at", nullable=True),
    )
    op.create_table(
        "request_nonces",
        sa.Column("partner_id", sa.Text, primary_key=True),
        sa.Column("nonce", sa.Text, primary_key=True),
        _ts("seen_at"),
    )
    op.create_table(
        "disclosures",
        sa.Column("disclosure_id", sa.Uuid, primary_key=True),
        sa.Column("subject_id", sa.Text, nullable=False, index=True),
        sa.Column("partner_id", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("ground", sa.Text, nullable=True),
        sa.Column("decision_id", sa.Uuid, nullable=True),
        sa.Column("case_reference", sa.Text, nullable=True),
        _ts("at"),
    )
    op.create_table(
        "statistics_releases",
        sa.Column("release_id", sa.Uuid, primary_key=True),
        sa.Column("query", sa.Text, nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("k", sa.Integer, nullable=False),
        sa.Column("cells", sa.Integer, nullable=False),
        sa.Column("suppressed", sa.Integer, nullable=False),
        sa.Column("requested_by", sa.Text, nullable=False),
        _ts("released_at"),
    )
    op.create_table(
        "partner_signing_keys",
        sa.Column("kid", sa.Text, primary_key=True),
        sa.Column("private_key_wrapped", sa.LargeBinary, nullable=False),
        sa.Column("public_jwk", sa.Text, nullable=False),
        _ts("created_at"),
        _ts("retired_at", nullable=True),
    )


def downgrade() -> None:
    for table in (
        "partner_signing_keys",
        "statistics_releases",
        "disclosures",
        "request_nonces",
        "partner_credentials",
        "agreements",
        "partners",
    ):
        op.drop_table(table)
