"""Identity: staff members.

Revision ID: identity_0005
Revises: identity_0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "identity_0005"
down_revision = "identity_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_members",
        sa.Column("staff_id", sa.Text, primary_key=True),
        sa.Column("email_lookup", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("totp_secret_wrapped", sa.LargeBinary, nullable=True),
        sa.Column("totp_enrolled", sa.Boolean, nullable=False),
        sa.Column("recovery_codes", sa.JSON, nullable=False),
        sa.Column("failed_attempts", sa.Integer, nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("staff_members")
