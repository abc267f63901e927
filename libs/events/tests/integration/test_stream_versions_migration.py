"""eventstore_0007 on a database that already has a log: `stream_versions` starts where each
stream is, so the first append after the upgrade (staged and sequenced, eventstore_0008)
continues the stream and the chain."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.engine import Connection

from expensura_events.chain import GENESIS, link_hash
from expensura_events.db import (
    EVENTSTORE_VERSIONS,
    MIGRATIONS,
    drop_database,
    ensure_database,
    new_engine,
    upgrade,
    with_database,
)
from expensura_events.sequencer import sequence_pending


def _upgrade_to(conn: Connection, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("version_locations", str(EVENTSTORE_VERSIONS))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


async def test_the_upgrade_starts_each_stream_at_its_version_in_the_log(
    pg_admin_url: str,
) -> None:
    name = f"expensura_migration_{uuid.uuid4().hex[:8]}"
    await ensure_database(pg_admin_url, name)
    url = with_database(pg_admin_url, name)
    engine = new_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "eventstore_0006")
            # a log as the append before eventstore_0007 left it: two streams, three links
            prev = GENESIS
            for seq, (stream, version) in enumerate((("a", 1), ("b", 1), ("a", 2)), 1):
                record = f'{{"stream_id":"{stream}","stream_version":{version}}}'.encode()
                prev = link_hash(prev, seq, record)
                await conn.execute(
                    text(
                        "INSERT INTO event_log (seq, event_id, stream_id, stream_version,"
                        " event_type, recorded_at, record, hash)"
                        " VALUES (:seq, :id, :s, :v, 'testing.Old', now(), :r, :h)"
                    ),
                    {
                        "seq": seq,
                        "id": uuid.uuid4(),
                        "s": stream,
                        "v": version,
                        "r": record,
                        "h": prev,
                    },
                )
        await upgrade(url, [EVENTSTORE_VERSIONS])
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT stream_id, version FROM stream_versions"))
            versions: dict[str, int] = {r.stream_id: r.version for r in rows}
        assert versions == {"a": 2, "b": 1}

        # The staging call (eventstore_0008) checks the stream's version: built on a stale
        # one, it changes nothing and says where the stream is; the sequencer then continues
        # the chain (`chain.link_hash` in SQL).
        record = b'{"stream_id":"a","stream_version":3}'
        call = text(
            "SELECT * FROM expensura_stage(ARRAY[CAST(:id AS uuid)], ARRAY['a'], ARRAY[3],"
            " ARRAY['testing.New'], ARRAY[NULL::text], now(), ARRAY[CAST(:r AS bytea)],"
            " ARRAY[NULL::bytea], ARRAY[NULL::text], ARRAY['a'], ARRAY[CAST(:base AS int)],"
            " ARRAY[3])"
        )
        async with engine.begin() as conn:
            stale = (await conn.execute(call, {"id": uuid.uuid4(), "r": record, "base": 1})).one()
            assert tuple(stale) == ("a", 2)
            done = (await conn.execute(call, {"id": uuid.uuid4(), "r": record, "base": 2})).one()
            assert tuple(done) == (None, None)
        async with engine.begin() as conn:
            assert await sequence_pending(conn) == (1, 4)
        async with engine.connect() as conn:
            head = (
                await conn.execute(text("SELECT seq, hash FROM event_log ORDER BY seq DESC"))
            ).first()
            version = (
                await conn.execute(text("SELECT version FROM stream_versions WHERE stream_id='a'"))
            ).scalar_one()
        assert head is not None and (head.seq, bytes(head.hash)) == (4, link_hash(prev, 4, record))
        assert version == 3
    finally:
        await engine.dispose()
        await drop_database(pg_admin_url, name)
