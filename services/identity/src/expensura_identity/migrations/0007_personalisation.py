"""Identity: personalisation profiles (only with consent, USE-5).

Revision ID: identity_0007
Revises: identity_0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "identity_0007"
down_revision = "identity_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "personalisation_profiles",
        sa.Column("subject_id", sa.Text, primary_key=True),
        sa.Column("consent_id", sa.Uuid, nullable=False),
        sa.Column("sign_ins", sa.Integer, nullable=False),
        sa.Column("usual_hour_utc", sa.Integer, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("personalisation_profiles")
