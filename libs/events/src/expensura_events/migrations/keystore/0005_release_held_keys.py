"""A service releases its own retention holds: `destroy_held_key` destroys one hold's key
(`<subject>#hold:<hold>`) that the calling role owns, and leaves the hold's tombstone.

Before this revision only the erasure path (identity) could destroy keys, so a service
holding records under a retention hold (loans: RUL-2) could place the hold but never end
it. A service may end only its own holds: the function takes nothing but a hold's key id,
destroys only the caller's rows of it, and never a subject's own key.

Revision ID: keystore_0005
Revises: keystore_0004
Create Date: 2026-12-06
"""

from alembic import op

revision = "keystore_0005"
down_revision = "keystore_0004"
branch_labels = None
depends_on = None

# SECURITY DEFINER: it writes a tombstone (only the owner may: keystore_0002's guard) and
# sees every row; `session_user` is the service's role that called it.
DESTROY_HELD = """
CREATE FUNCTION destroy_held_key(held text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    n integer;
BEGIN
    IF position('#hold:' IN held) <= 1 OR split_part(held, '#hold:', 2) = '' THEN
        RAISE EXCEPTION 'destroy_held_key destroys a retention hold''s key only'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('subject-key:' || split_part(held, '#hold:', 1)));
    UPDATE public.subject_keys SET wrapped_key = NULL, destroyed_at = now()
    WHERE subject_id = held AND owner = session_user AND wrapped_key IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- the hold's tombstone: no key is created for it again, so nothing more is held
    INSERT INTO public.subject_keys
        (subject_id, owner, key_id, kek_id, wrapped_key, created_at, destroyed_at)
    VALUES (held, '*', gen_random_uuid(), 'destroyed', NULL, now(), now())
    ON CONFLICT (subject_id, owner) DO NOTHING;
    RETURN n > 0;
END $$;
"""


def upgrade() -> None:
    op.execute(DESTROY_HELD)
    op.execute("REVOKE ALL ON FUNCTION destroy_held_key(text) FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION destroy_held_key(text)")
