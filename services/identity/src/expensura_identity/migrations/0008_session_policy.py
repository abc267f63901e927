"""Identity: session lifetimes as policy, one-time codes, exact throttles.

- Every refresh-token family carries its start and its absolute end (the cap of its
  principal kind); rotation copies both.
- Staff members: a disabled state, and the last TOTP time step accepted (none is accepted
  twice).
- MFA challenges are stored (by hash) so that one is consumed once, by the client that
  started it.
- The sign-in throttle is one counter row per key and window, raised by one atomic
  statement, instead of a row per attempt counted under an advisory lock.

Revision ID: identity_0008
Revises: identity_0005
Create Date: 2027-01-12
"""

import sqlalchemy as sa
from alembic import op

revision = "identity_0008"
down_revision = "identity_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Families issued before the cap existed end at their token's own expiry.
    op.add_column(
        "refresh_tokens", sa.Column("family_started_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "refresh_tokens", sa.Column("family_expires_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        "UPDATE refresh_tokens SET family_started_at = issued_at, family_expires_at = expires_at"
    )
    op.alter_column("refresh_tokens", "family_started_at", nullable=False)
    op.alter_column("refresh_tokens", "family_expires_at", nullable=False)
    op.create_index("refresh_tokens_principal", "refresh_tokens", ["principal_id"])

    op.add_column(
        "staff_members", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("staff_members", sa.Column("last_totp_step", sa.BigInteger, nullable=True))

    op.create_table(
        "mfa_challenges",
        sa.Column("challenge_hash", sa.LargeBinary, primary_key=True),
        sa.Column("staff_id", sa.Text, nullable=False),
        sa.Column("client_binding", sa.LargeBinary, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )

    op.create_table(
        "sign_in_throttle",
        sa.Column("key", sa.LargeBinary, primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
    )
    op.drop_table("sign_in_attempts")


def downgrade() -> None:
    op.create_table(
        "sign_in_attempts",
        sa.Column("key", sa.LargeBinary, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("sign_in_attempts_key_at", "sign_in_attempts", ["key", "at"])
    op.drop_table("sign_in_throttle")
    op.drop_table("mfa_challenges")
    op.drop_column("staff_members", "last_totp_step")
    op.drop_column("staff_members", "disabled_at")
    op.drop_index("refresh_tokens_principal", "refresh_tokens")
    op.drop_column("refresh_tokens", "family_expires_at")
    op.drop_column("refresh_tokens", "family_started_at")
