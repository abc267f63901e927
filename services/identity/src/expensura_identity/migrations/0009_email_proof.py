"""Identity: proof that an account holder receives mail at the account's e-mail.

- `accounts.email_proven_at`: when the proof was made. Accounts opened before this revision
  have none: like every new account, they prove their e-mail (a code on request) before
  loans serves them.
- `email_proofs`: each account's live one-time code, by keyed hash, with its expiry, the
  attempts made and when it was used.

Revision ID: identity_0009
Revises: identity_0008
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "identity_0009"
down_revision = "identity_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "accounts", sa.Column("email_proven_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "email_proofs",
        sa.Column("account_id", sa.Uuid, primary_key=True),
        sa.Column("code_hash", sa.LargeBinary, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("email_proofs")
    op.drop_column("accounts", "email_proven_at")
