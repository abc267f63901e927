"""Consent: a legal ground naming recipients waits for a second officer's approval.

Invocations recorded before this revision were in effect when made: they stay so
(`not-required`), as their events say.

Revision ID: consent_0005
Revises: consent_0004
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "consent_0005"
down_revision = "consent_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "ground_invocations",
        sa.Column("approval", sa.Text, nullable=False, server_default="not-required"),
    )
    op.add_column("ground_invocations", sa.Column("decided_by_kind", sa.Text, nullable=True))
    op.add_column("ground_invocations", sa.Column("decided_by_id", sa.Text, nullable=True))
    op.add_column(
        "ground_invocations", sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    for column in ("decided_at", "decided_by_id", "decided_by_kind", "approval"):
        op.drop_column("ground_invocations", column)
