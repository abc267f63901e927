"""Loans: what an application names besides its terms (its purpose and the applicant's stated
income, sealed together with their key), and its assessment's decision.

Revision ID: loans_0005
Revises: loans_0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "loans_0005"
down_revision = "loans_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Null on applications from before: they name no purpose or income and cannot be assessed.
    op.add_column("loan_applications", sa.Column("facts_sealed", JSONB, nullable=True))
    op.add_column("loan_applications", sa.Column("decision", sa.Text, nullable=True))
    op.add_column(
        "loan_applications", sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("loan_applications", "assessed_at")
    op.drop_column("loan_applications", "decision")
    op.drop_column("loan_applications", "facts_sealed")
