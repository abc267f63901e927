"""Identity: the incidents' requests to end a staff member's sessions it carried out
(SEC-4), so that replaying incident's log carries none out twice.

Revision ID: identity_0011
Revises: identity_0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "identity_0011"
down_revision = "identity_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_containments",
        sa.Column("request_id", sa.Uuid, primary_key=True),
        sa.Column("incident_id", sa.Uuid, nullable=False),
        sa.Column("staff_id", sa.Text, nullable=False),
        sa.Column("carried_out_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("staff_containments")
