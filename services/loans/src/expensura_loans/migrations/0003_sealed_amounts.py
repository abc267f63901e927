"""Loans: an application's amount is kept sealed with the applicant's key.

A migration holds no keys: it adds the sealed column and lets the plaintext one be empty;
the service's `seal-legacy-amounts` worker seals the rows it finds with a plaintext amount
and clears it, at every start (a no-op once done). A later revision drops `amount_cents`.

Revision ID: loans_0003
Revises: loans_0002
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "loans_0003"
down_revision = "loans_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("loan_applications", sa.Column("amount_sealed", JSONB, nullable=True))
    op.alter_column("loan_applications", "amount_cents", nullable=True)


def downgrade() -> None:
    # Sealed amounts cannot be opened without keys: downgrading loses no plaintext, but
    # rows whose amount is only sealed block it (NOT NULL) until they are resolved.
    op.alter_column("loan_applications", "amount_cents", nullable=False)
    op.drop_column("loan_applications", "amount_sealed")
