"""The local key store: per-subject data keys wrapped by the master key.

Revision ID: keystore_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "keystore_0001"
down_revision = None
branch_labels = ("keystore",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_keys",
        sa.Column("subject_id", sa.Text, primary_key=True),
        sa.Column("key_id", sa.Uuid, nullable=False),
        sa.Column("kek_id", sa.Text, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(wrapped_key IS NULL) = (destroyed_at IS NOT NULL)",
            name="subject_keys_destroyed_has_no_key",
        ),
    )


def downgrade() -> None:
    op.drop_table("subject_keys")
