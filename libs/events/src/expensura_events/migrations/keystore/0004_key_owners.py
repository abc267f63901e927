"""Each service seals with keys of its own; it opens another's only where it is a declared
reader (issue 10, key isolation).

A subject's data keys are now one per writing service (`owner`, its database role, as for
`service_secrets`). Row-level security lets a role see the keys it owns, the keys of owners
it is a declared reader of (`subject_key_readers`, written by provisioning from what each
service's projections open), and the keys written before this revision (`owner = '*'`,
shared as they always were). A role creates keys only as itself.

Crypto-shredding stays one act: `destroy_subject_key` destroys every owner's key of the
subject and leaves a tombstone, and a trigger refuses any new key for a subject (or a hold
of a subject) with a tombstone. The trigger and the destroy take the same per-subject lock,
so a key created while the subject is being erased is either destroyed with the others or
refused. `subject_key_state` tells any service whether a subject still has a live key
anywhere, without showing a key.

Revision ID: keystore_0004
Revises: keystore_0003
Create Date: 2026-12-05
"""

from alembic import op

revision = "keystore_0004"
down_revision = "keystore_0003"
branch_labels = None
depends_on = None

SHARED = "*"  # keys written before this revision: every service reads them, as before

GUARD = """
CREATE OR REPLACE FUNCTION subject_keys_guard() RETURNS trigger
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
       OR NEW.created_at IS DISTINCT FROM OLD.created_at OR NEW.owner IS DISTINCT FROM OLD.owner
    THEN
        RAISE EXCEPTION 'a subject key keeps its subject, owner, id and creation time'
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

# Runs as the table's owner (it must see every owner's tombstones through row-level
# security); the lock is the one destroy_subject_key takes for the same subject.
ERASED_GUARD = """
CREATE FUNCTION subject_keys_erased_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    base text := split_part(NEW.subject_id, '#hold:', 1);
BEGIN
    IF NEW.wrapped_key IS NULL THEN
        RETURN NEW;  -- a tombstone (the other guard lets only the owner make one)
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('subject-key:' || base));
    IF EXISTS (SELECT 1 FROM public.subject_keys
               WHERE subject_id IN (NEW.subject_id, base) AND destroyed_at IS NOT NULL) THEN
        RAISE EXCEPTION 'the data subject has been erased: no new key'
            USING ERRCODE = 'KS001';
    END IF;
    RETURN NEW;
END $$;
"""

DESTROY = """
CREATE OR REPLACE FUNCTION destroy_subject_key(subject text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('subject-key:' || split_part(subject, '#hold:', 1)));
    UPDATE public.subject_keys SET wrapped_key = NULL, destroyed_at = now()
    WHERE subject_id = subject AND wrapped_key IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- and a tombstone of its own, so that no owner ever creates a key for it again
    INSERT INTO public.subject_keys
        (subject_id, owner, key_id, kek_id, wrapped_key, created_at, destroyed_at)
    VALUES (subject, '*', gen_random_uuid(), 'destroyed', NULL, now(), now())
    ON CONFLICT (subject_id, owner) DO NOTHING;
    RETURN n > 0;
END $$;
"""

REWRAP = """
CREATE OR REPLACE FUNCTION rewrap_subject_key(
    subject text, old_kek text, old_wrapped bytea, new_kek text, new_wrapped bytea
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF new_kek = old_kek OR new_wrapped IS NULL THEN
        RAISE EXCEPTION 'a re-wrap moves a live key to another master key';
    END IF;
    -- compare-and-swap on the old wrap (unique: a random nonce), whoever owns the key
    UPDATE public.subject_keys SET kek_id = new_kek, wrapped_key = new_wrapped
    WHERE subject_id = subject AND kek_id = old_kek AND wrapped_key = old_wrapped
      AND destroyed_at IS NULL;
    RETURN FOUND;
END $$;
"""

STATE = """
CREATE FUNCTION subject_key_state(subject text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT CASE
        WHEN bool_or(wrapped_key IS NOT NULL) THEN 'live'
        WHEN bool_or(destroyed_at IS NOT NULL) THEN 'destroyed'
        ELSE 'none'
    END
    FROM public.subject_keys WHERE subject_id = subject
$$;
"""


def upgrade() -> None:
    op.execute(f"ALTER TABLE subject_keys ADD COLUMN owner text NOT NULL DEFAULT '{SHARED}'")
    op.execute("ALTER TABLE subject_keys ALTER COLUMN owner SET DEFAULT current_user")
    op.execute("ALTER TABLE subject_keys DROP CONSTRAINT subject_keys_pkey")
    op.execute("ALTER TABLE subject_keys ADD PRIMARY KEY (subject_id, owner)")
    op.execute(
        """
        CREATE TABLE subject_key_readers (
            owner text NOT NULL,
            reader text NOT NULL,
            PRIMARY KEY (owner, reader)
        )
        """
    )
    op.execute("REVOKE ALL ON subject_key_readers FROM PUBLIC")
    op.execute("ALTER TABLE subject_keys ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY readable_keys ON subject_keys FOR SELECT USING ("
        f" owner = '{SHARED}' OR owner = current_user OR owner IN"
        " (SELECT r.owner FROM subject_key_readers r WHERE r.reader = current_user))"
    )
    op.execute(
        "CREATE POLICY own_keys_create ON subject_keys FOR INSERT WITH CHECK (owner = current_user)"
    )
    op.execute(GUARD)
    op.execute(ERASED_GUARD)
    op.execute(
        "CREATE TRIGGER subject_keys_erased_guard BEFORE INSERT ON subject_keys"
        " FOR EACH ROW EXECUTE FUNCTION subject_keys_erased_guard()"
    )
    op.execute(DESTROY)
    op.execute(REWRAP)
    op.execute(STATE)
    op.execute("REVOKE ALL ON FUNCTION subject_key_state(text) FROM PUBLIC")


def downgrade() -> None:
    raise NotImplementedError("keys owned by services cannot be merged back into one")
