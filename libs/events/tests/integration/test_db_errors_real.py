"""What counts as "the database is unavailable", on failures from a real server."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import make_url

from expensura_events import db
from expensura_events.db import engine_for
from expensura_events.db_errors import is_transient, is_unavailable, sqlstate


async def test_real_failures_from_a_real_server(pg_admin_url: str) -> None:
    engine = engine_for(pg_admin_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("CREATE TEMP TABLE t (x text)"))
            with pytest.raises(sa_exc.DBAPIError) as nul:
                await conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": "a\x00b@example.com"})
            await conn.rollback()
        assert not is_transient(nul.value) and sqlstate(nul.value) == "22021"
        assert "example.com" not in str(nul.value)  # hide_parameters

        async with engine.connect() as conn:  # the server ends our session: 57P01
            with pytest.raises(sa_exc.DBAPIError) as terminated:
                await conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        assert is_unavailable(terminated.value)
    finally:
        await engine.dispose()

    closed_port = make_url(pg_admin_url).set(host="127.0.0.1", port=1)
    nowhere = engine_for(closed_port.render_as_string(hide_password=False))
    try:
        with pytest.raises(Exception) as refused:
            async with nowhere.connect():
                pass
        assert is_unavailable(refused.value)
    finally:
        await nowhere.dispose()


async def test_a_connection_dropped_while_idle_in_the_pool_is_replaced_before_use(
    pg_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ping per checkout (a round trip per request), but a connection that sat in the
    pool is pinged first: one the server ended meanwhile is replaced, not handed out."""
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    engine = engine_for(pg_admin_url, pool_size=1)
    admin = engine_for(pg_admin_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
        async with admin.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})
        async with engine.connect() as conn:  # no error: the ping found it gone
            again = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
        assert again != pid
    finally:
        await engine.dispose()
        await admin.dispose()
