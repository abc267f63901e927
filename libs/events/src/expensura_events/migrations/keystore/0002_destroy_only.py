"""Keys can be created and destroyed, never changed back: the database enforces it.

Service roles keep SELECT and INSERT (a new subject gets a key) but no UPDATE or DELETE;
destroying goes through `destroy_subject_key`, which only ever makes a tombstone, and is
granted to the erasure path alone (`db.grant_keystore`). A trigger refuses, whoever asks,
any change that would bring a destroyed key back, rewrite a live key under the same master
key, or delete a row (the tombstone is what stops a key being created again). Rotation
re-wraps through `rewrap_subject_key`, a compare-and-swap on the old wrap, owner-only.

Revision ID: keystore_0002
Revises: keystore_0001
Create Date: 2026-12-05
"""

from alembic import op

revision = "keystore_0002"
down_revision = "keystore_0001"
branch_labels = None
depends_on = None

GUARD = """
CREATE FUNCTION subject_keys_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE
    owner name := (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID);
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
        RAISE EXCEPTION 'subject keys are never deleted: a destroyed key stays a tombstone'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'INSERT' THEN
        -- a tombstone is an erasure: only destroy_subject_key (run as the owner) makes one
        IF NEW.wrapped_key IS NULL AND current_user <> owner THEN
            RAISE EXCEPTION 'only destroy_subject_key destroys a key'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.subject_id IS DISTINCT FROM OLD.subject_id OR NEW.key_id IS DISTINCT FROM OLD.key_id
       OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'a subject key keeps its subject, id and creation time'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.destroyed_at IS NOT NULL THEN
        IF NEW.destroyed_at IS DISTINCT FROM OLD.destroyed_at OR NEW.wrapped_key IS NOT NULL
           OR NEW.kek_id IS DISTINCT FROM OLD.kek_id THEN
            RAISE EXCEPTION 'a destroyed key never comes back'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.wrapped_key IS NULL THEN
        RETURN NEW;  -- destroying (the check constraint requires destroyed_at)
    END IF;
    IF NEW.wrapped_key IS DISTINCT FROM OLD.wrapped_key AND NEW.kek_id = OLD.kek_id THEN
        RAISE EXCEPTION 'a live key is only re-wrapped under another master key'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
"""

DESTROY = """
CREATE FUNCTION destroy_subject_key(subject text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    n integer;
BEGIN
    -- no key yet: leave a tombstone so that none is ever created
    INSERT INTO public.subject_keys
        (subject_id, key_id, kek_id, wrapped_key, created_at, destroyed_at)
    VALUES (subject, gen_random_uuid(), 'destroyed', NULL, now(), now())
    ON CONFLICT (subject_id) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 1 THEN
        RETURN false;
    END IF;
    UPDATE public.subject_keys SET wrapped_key = NULL, destroyed_at = now()
    WHERE subject_id = subject AND wrapped_key IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n = 1;
END $$;
"""

REWRAP = """
CREATE FUNCTION rewrap_subject_key(
    subject text, old_kek text, old_wrapped bytea, new_kek text, new_wrapped bytea
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF new_kek = old_kek OR new_wrapped IS NULL THEN
        RAISE EXCEPTION 'a re-wrap moves a live key to another master key';
    END IF;
    -- compare-and-swap: a key destroyed or re-wrapped meanwhile is left as it is
    UPDATE public.subject_keys SET kek_id = new_kek, wrapped_key = new_wrapped
    WHERE subject_id = subject AND kek_id = old_kek AND wrapped_key = old_wrapped
      AND destroyed_at IS NULL;
    RETURN FOUND;
END $$;
"""


def upgrade() -> None:
    op.execute(GUARD)
    op.execute(
        "CREATE TRIGGER subject_keys_guard BEFORE INSERT OR UPDATE OR DELETE ON subject_keys"
        " FOR EACH ROW EXECUTE FUNCTION subject_keys_guard()"
    )
    op.execute(
        "CREATE TRIGGER subject_keys_no_truncate BEFORE TRUNCATE ON subject_keys"
        " FOR EACH STATEMENT EXECUTE FUNCTION subject_keys_guard()"
    )
    op.execute(DESTROY)
    op.execute(REWRAP)
    op.execute("REVOKE ALL ON FUNCTION destroy_subject_key(text) FROM PUBLIC")
    op.execute(
        "REVOKE ALL ON FUNCTION rewrap_subject_key(text, text, bytea, text, bytea) FROM PUBLIC"
    )
    # roles provisioned before this revision had UPDATE: take it back from everyone
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON subject_keys FROM PUBLIC")
    op.execute(
        """
        DO $$
        DECLARE r record;
        BEGIN
            FOR r IN SELECT DISTINCT grantee FROM information_schema.role_table_grants
                     WHERE table_name = 'subject_keys' AND privilege_type IN ('UPDATE', 'DELETE')
                       AND grantee <> current_user
            LOOP
                EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON subject_keys FROM %I',
                               r.grantee);
            END LOOP;
        END $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER subject_keys_no_truncate ON subject_keys")
    op.execute("DROP TRIGGER subject_keys_guard ON subject_keys")
    op.execute("DROP FUNCTION rewrap_subject_key(text, text, bytea, text, bytea)")
    op.execute("DROP FUNCTION destroy_subject_key(text)")
    op.execute("DROP FUNCTION subject_keys_guard()")
