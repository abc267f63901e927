"""Consent: an invocation's evidence and reason are kept sealed with the subject's key.

They are free text about the subject's case (a court order's reference, why it applies):
crypto-shredding must reach them, and a dump must not show them. A migration holds no keys:
it adds the sealed columns and lets the plaintext ones be empty; the service's
`seal-legacy-ground-texts` worker seals the rows it finds with plaintext and clears it, at
every start (a no-op once done). A later revision drops the plaintext columns.

Revision ID: consent_0006
Revises: consent_0005
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "consent_0006"
down_revision = "consent_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ground_invocations", sa.Column("evidence_sealed", JSONB, nullable=True))
    op.add_column("ground_invocations", sa.Column("reason_sealed", JSONB, nullable=True))
    op.alter_column("ground_invocations", "evidence_reference", nullable=True)
    op.alter_column("ground_invocations", "reason", nullable=True)


def downgrade() -> None:
    # Sealed texts cannot be opened without keys: rows whose texts are only sealed block
    # the downgrade (NOT NULL) until they are resolved.
    op.alter_column("ground_invocations", "reason", nullable=False)
    op.alter_column("ground_invocations", "evidence_reference", nullable=False)
    op.drop_column("ground_invocations", "reason_sealed")
    op.drop_column("ground_invocations", "evidence_sealed")
