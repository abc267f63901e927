"""Wake the relay when the log grows: every INSERT into event_log notifies the channel
`event_log_appended` at commit (once per transaction), so the relay publishes at once and
polls only as a fallback.

Revision ID: eventstore_0005
Revises: eventstore_0004
Create Date: 2026-12-05
"""

from alembic import op

revision = "eventstore_0005"
down_revision = "eventstore_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION event_log_appended() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
                PERFORM pg_notify('event_log_appended', '');
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER event_log_appended AFTER INSERT ON event_log
        FOR EACH STATEMENT EXECUTE FUNCTION event_log_appended()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER event_log_appended ON event_log")
    op.execute("DROP FUNCTION event_log_appended()")
