"""Each record's Ed25519 signature by the service that appended it, and the key's id.

Revision ID: eventstore_0004
Revises: eventstore_0003
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "eventstore_0004"
down_revision = "eventstore_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: records appended before signing existed have none (consumers refuse them;
    # see docs/operations.md). The signature is not part of the hashed record bytes.
    op.add_column("event_log", sa.Column("signature", sa.LargeBinary, nullable=True))
    op.add_column("event_log", sa.Column("signing_key_id", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("event_log", "signing_key_id")
    op.drop_column("event_log", "signature")
