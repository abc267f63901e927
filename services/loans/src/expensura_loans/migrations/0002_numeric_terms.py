"""Loans: an application's amount and term are stored as numbers, not text.

Revision ID: loans_0002
Revises: loans_0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "loans_0002"
down_revision = "loans_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every stored value was written from a validated integer, so the casts cannot fail.
    op.alter_column(
        "loan_applications",
        "amount_cents",
        type_=sa.BigInteger,
        postgresql_using="amount_cents::bigint",
    )
    op.alter_column(
        "loan_applications",
        "term_months",
        type_=sa.Integer,
        postgresql_using="term_months::integer",
    )


def downgrade() -> None:
    op.alter_column(
        "loan_applications", "term_months", type_=sa.Text, postgresql_using="term_months::text"
    )
    op.alter_column(
        "loan_applications", "amount_cents", type_=sa.Text, postgresql_using="amount_cents::text"
    )
