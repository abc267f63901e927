"""Each service's own secrets, wrapped by the master key, readable by that service alone.

A look-up HMAC key, a pseudonym key and the keys that wrap token-signing keys and TOTP
secrets: random (not derived from the master key), so a master-key rotation re-wraps them
and they stay the same, and stored hashes and wraps stay valid. Row-level security lets a
service role see and create only rows it owns; nobody updates or deletes one except the
owner's `rewrap_service_secret` (compare-and-swap, as for subjects' keys).

Revision ID: keystore_0003
Revises: keystore_0002
Create Date: 2026-12-05
"""

from alembic import op

revision = "keystore_0003"
down_revision = "keystore_0002"
branch_labels = None
depends_on = None

GUARD = """
CREATE FUNCTION service_secrets_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
        RAISE EXCEPTION 'service secrets are never deleted'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.owner IS DISTINCT FROM OLD.owner OR NEW.label IS DISTINCT FROM OLD.label
       OR NEW.created_at IS DISTINCT FROM OLD.created_at OR NEW.kek_id = OLD.kek_id THEN
        RAISE EXCEPTION 'a service secret is only re-wrapped under another master key'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
"""

REWRAP = """
CREATE FUNCTION rewrap_service_secret(
    secret_owner text, secret_label text, old_kek text, old_wrapped bytea, new_kek text,
    new_wrapped bytea
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    UPDATE public.service_secrets SET kek_id = new_kek, wrapped = new_wrapped
    WHERE owner = secret_owner AND label = secret_label AND kek_id = old_kek
      AND wrapped = old_wrapped;
    RETURN FOUND;
END $$;
"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE service_secrets (
            owner text NOT NULL DEFAULT current_user,
            label text NOT NULL,
            kek_id text NOT NULL,
            wrapped bytea NOT NULL,
            created_at timestamptz NOT NULL,
            PRIMARY KEY (owner, label)
        )
        """
    )
    op.execute("ALTER TABLE service_secrets ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY own_secrets_read ON service_secrets FOR SELECT USING (owner = current_user)"
    )
    op.execute(
        "CREATE POLICY own_secrets_create ON service_secrets FOR INSERT"
        " WITH CHECK (owner = current_user)"
    )
    op.execute(GUARD)
    op.execute(
        "CREATE TRIGGER service_secrets_guard BEFORE UPDATE OR DELETE ON service_secrets"
        " FOR EACH ROW EXECUTE FUNCTION service_secrets_guard()"
    )
    op.execute(
        "CREATE TRIGGER service_secrets_no_truncate BEFORE TRUNCATE ON service_secrets"
        " FOR EACH STATEMENT EXECUTE FUNCTION service_secrets_guard()"
    )
    op.execute(REWRAP)
    op.execute(
        "REVOKE ALL ON FUNCTION rewrap_service_secret(text, text, text, bytea, text, bytea)"
        " FROM PUBLIC"
    )


def downgrade() -> None:
    op.execute("DROP TABLE service_secrets")
    op.execute("DROP FUNCTION rewrap_service_secret(text, text, text, bytea, text, bytea)")
    op.execute("DROP FUNCTION service_secrets_guard()")
