"""Sharing gateway: partners, agreements, credentials, nonces, disclosures, releases.

Revision ID: sharing_0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

from expensura_sharing_gateway.tables import metadata

revision = "sharing_0001"
down_revision = None
branch_labels = ("sharing-gateway",)
depends_on = "eventstore_0002"


def upgrade() -> None:
    # The tables as first declared; later changes get migrations of their own.
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
