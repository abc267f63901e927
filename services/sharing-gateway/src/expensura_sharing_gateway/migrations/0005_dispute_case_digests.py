"""Sharing gateway: loans' balance-dispute cases are kept by their reference's SHA-256 digest
(`loans.BalanceDisputeOpened` v2 seals the reference). Rows from v1 events are converted in
place, with the digest `dispute_case_digest` computes (upper-cased, trimmed, SHA-256, hex).

Revision ID: sharing_0005
Revises: sharing_0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "sharing_0005"
down_revision = "sharing_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dispute_cases", sa.Column("case_digest", sa.Text, nullable=True))
    op.execute(
        "UPDATE dispute_cases SET case_digest ="
        " encode(sha256(convert_to(upper(btrim(case_reference)), 'UTF8')), 'hex')"
    )
    op.drop_constraint("dispute_cases_pkey", "dispute_cases", type_="primary")
    op.drop_column("dispute_cases", "case_reference")
    op.alter_column("dispute_cases", "case_digest", nullable=False)
    op.create_primary_key("dispute_cases_pkey", "dispute_cases", ["case_digest"])


def downgrade() -> None:
    # The references cannot be recovered from their digests: the table is emptied, and the
    # projection refills it from loans' log when rebuilt.
    op.execute("DELETE FROM dispute_cases")
    op.drop_constraint("dispute_cases_pkey", "dispute_cases", type_="primary")
    op.drop_column("dispute_cases", "case_digest")
    op.add_column("dispute_cases", sa.Column("case_reference", sa.Text, nullable=False))
    op.create_primary_key("dispute_cases_pkey", "dispute_cases", ["case_reference"])
