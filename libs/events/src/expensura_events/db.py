"""Engines, URLs, migrations and the database roles that make the log append-only."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from expensura_events.sequencer import LogEngine, forget_appended, log_engine

MIGRATIONS = Path(__file__).parent / "migrations"
EVENTSTORE_VERSIONS = MIGRATIONS / "eventstore"
KEYSTORE_VERSIONS = MIGRATIONS / "keystore"


def async_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+asyncpg:// and use asyncpg."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+asyncpg://", url)


def with_database(
    url: str, database: str, user: str | None = None, password: str | None = None
) -> str:
    u = make_url(async_url(url)).set(database=database)
    if user is not None:
        u = u.set(username=user, password=password)
    return u.render_as_string(hide_password=False)


def redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def new_engine(url: str, **options: Any) -> AsyncEngine:
    """Every engine the library creates: SQL parameters never appear in exception text (they
    hold personal data: a contact being projected, evidence being recorded)."""
    return create_async_engine(async_url(url), hide_parameters=True, **options)


# A pooled connection idle longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0


def engine_for(url: str, *, pool_size: int = 20) -> LogEngine:
    """A service's engine: pings connections that sat idle, and sequences what a `begin()`
    block appended once it commits (`sequencer.LogEngine`). Connections open as concurrency
    needs them and stay up to `pool_size`; above it (10 more at most) each is closed when
    returned, and opening one costs a connection's start-up and asyncpg's type look-ups
    (py-spy: a tenth of an append's CPU with 16 writers on a pool of 10)."""
    engine = new_engine(url, pool_size=pool_size, max_overflow=10, connect_args={"timeout": 5})
    _ping_when_idle(engine)
    return log_engine(engine)


def _ping_when_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's `pool_pre_ping`, but only for a connection that sat in the pool: a
    connection the database dropped while idle (a restart, a proxy's timeout) is replaced
    before a request uses it, and a busy service does not pay a round trip per request
    (it was one of a consent decision's seven). A connection that breaks within a second
    of its last use fails that one request (503, `unavailable`), and SQLAlchemy then
    replaces every connection of the pool."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["returned_at"] = time.monotonic()
        forget_appended(record.info)

    @event.listens_for(pool, "checkout")
    def handed_out(
        dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < PING_AFTER_IDLE_SECONDS:
            return  # new, or used a moment ago
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError("the pooled connection did not answer a ping") from exc


async def upgrade(url: str, version_locations: list[Path]) -> None:
    """Run Alembic to the heads of the given version directories."""
    engine = new_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, version_locations)
    finally:
        await engine.dispose()


def _upgrade(conn: Connection, version_locations: list[Path]) -> None:
    # Imported here: Alembic (through Mako, Pygments) costs every process a third of a second
    # at start, and only provisioning migrates.
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("version_locations", " ".join(str(p) for p in version_locations))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "heads")


async def ensure_database(
    admin_url: str, database: str, owner: str | None = None, *, template: str | None = None
) -> bool:
    """CREATE DATABASE unless it exists (CREATE DATABASE cannot run in a transaction);
    `template`: as a copy of that database (which nobody may be connected to)."""
    engine = new_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            exists = (
                await conn.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": database}
                )
            ).first()
            if exists:
                return False
            owner_sql = f' OWNER "{owner}"' if owner else ""
            template_sql = f' TEMPLATE "{_ident(template)}"' if template else ""
            await conn.execute(
                text(f'CREATE DATABASE "{_ident(database)}"{owner_sql}{template_sql}')
            )
            return True
    finally:
        await engine.dispose()


async def drop_database(admin_url: str, database: str) -> None:
    engine = new_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{_ident(database)}" WITH (FORCE)'))
    finally:
        await engine.dispose()


async def drop_databases_named(admin_url: str, prefix: str) -> None:
    """Drop every database whose name starts with `prefix`."""
    engine = new_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            names = (
                await conn.execute(
                    text("SELECT datname FROM pg_database WHERE starts_with(datname, :p)"),
                    {"p": prefix},
                )
            ).scalars()
            for name in list(names):
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{_ident(name)}" WITH (FORCE)'))
    finally:
        await engine.dispose()


async def ensure_role(admin_url: str, role: str, password: str) -> None:
    engine = new_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            exists = (
                await conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
            ).first()
            verb = "ALTER" if exists else "CREATE"
            # DDL takes no bind parameters; the password is quoted as a literal here.
            literal = password.replace("'", "''")
            await conn.execute(text(f"{verb} ROLE \"{_ident(role)}\" LOGIN PASSWORD '{literal}'"))
    finally:
        await engine.dispose()


async def grant_service_role(owner_url: str, role: str) -> None:
    """The service role may read and write its tables but only INSERT/SELECT on the log."""
    engine = new_engine(owner_url)
    r = _ident(role)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{r}"'))
            await conn.execute(
                text(
                    f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{r}"'
                )
            )
            await conn.execute(
                text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{r}"')
            )
            await conn.execute(text(f'REVOKE UPDATE, DELETE, TRUNCATE ON event_log FROM "{r}"'))
            # pending records leave only into the log, through expensura_sequence (the owner's)
            await conn.execute(
                text(f'REVOKE UPDATE, DELETE, TRUNCATE ON event_log_pending FROM "{r}"')
            )
    finally:
        await engine.dispose()


async def grant_keystore(keystore_owner_url: str, role: str, *, may_destroy: bool = False) -> None:
    """A service may read subjects' keys and create new ones, never change one (no UPDATE,
    no DELETE: keystore_0002 also refuses a write-back by trigger). Destroying is the
    erasure path's alone (`may_destroy`), through the `destroy_subject_key` function."""
    engine = new_engine(keystore_owner_url)
    r = _ident(role)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{r}"'))
            await conn.execute(text(f'GRANT SELECT, INSERT ON subject_keys TO "{r}"'))
            await conn.execute(text(f'REVOKE UPDATE, DELETE, TRUNCATE ON subject_keys FROM "{r}"'))
            # which keys it sees: its own and its declared owners' (row-level security,
            # keystore_0004); whether a subject has a key left anywhere, never the key
            await conn.execute(text(f'GRANT SELECT ON subject_key_readers TO "{r}"'))
            await conn.execute(text(f'GRANT EXECUTE ON FUNCTION subject_key_state(text) TO "{r}"'))
            # its own secrets only: row-level security on the owner column (keystore_0003)
            await conn.execute(text(f'GRANT SELECT, INSERT ON service_secrets TO "{r}"'))
            # its own retention holds' keys, never a subject's (keystore_0005)
            await conn.execute(text(f'GRANT EXECUTE ON FUNCTION destroy_held_key(text) TO "{r}"'))
            verb = "GRANT" if may_destroy else "REVOKE"
            prep = "TO" if may_destroy else "FROM"
            await conn.execute(
                text(f'{verb} EXECUTE ON FUNCTION destroy_subject_key(text) {prep} "{r}"')
            )
    finally:
        await engine.dispose()


async def grant_key_readers(keystore_owner_url: str, readers: Mapping[str, Iterable[str]]) -> None:
    """Which roles may open which owners' subject keys (owner role → reader roles), as the
    whole truth: grants not named here are taken back."""
    pairs = sorted({(_ident(o), _ident(r)) for o, rs in readers.items() for r in rs})
    engine = new_engine(keystore_owner_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM subject_key_readers"))
            if pairs:
                await conn.execute(
                    text("INSERT INTO subject_key_readers (owner, reader) VALUES (:o, :r)"),
                    [{"o": o, "r": r} for o, r in pairs],
                )
    finally:
        await engine.dispose()


def _ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", name):
        raise ValueError(f"unsafe SQL identifier {name!r}")
    return name
