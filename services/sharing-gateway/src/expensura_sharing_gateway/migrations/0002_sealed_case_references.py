"""Sharing gateway: a disclosure's case reference is kept sealed with the subject's key.

A migration holds no keys: it adds the sealed column; the gateway's
`seal_legacy_case_references` worker seals the plaintext ones it finds and clears them, at
every start (a no-op once done). A later revision drops `case_reference`.

Revision ID: sharing_0002
Revises: sharing_0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "sharing_0002"
down_revision = "sharing_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("disclosures", sa.Column("case_reference_sealed", JSONB, nullable=True))


def downgrade() -> None:
    op.drop_column("disclosures", "case_reference_sealed")
