"""The runtime's key store is injectable: a service runtime on real PostgreSQL seals, reads
and shreds with an in-memory key store, and never touches the key-store database."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from expensura_events.cipher import ENC_MARK, SubjectErased
from expensura_events.db import engine_for
from expensura_events.envelope import REDACTED, Actor
from expensura_events.keystore import InMemoryKeyStore
from expensura_events.privacy.shredding import shred_subject
from expensura_events.runtime import ServiceRuntime
from expensura_events.store import verify_log
from expensura_events.tables import event_log, subject_keys
from expensura_events.testing.events import note
from expensura_identity.app import service_definition as identity
from expensura_ops.testing.stack import LocalStack


@pytest.fixture
async def rt(fresh_stack: LocalStack) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime(identity, fresh_stack.settings("identity"), keys=InMemoryKeyStore())
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.mark.obligation("SEC-1", "RGT-3")
async def test_an_injected_key_store_seals_reads_and_shreds(
    fresh_stack: LocalStack, rt: ServiceRuntime
) -> None:
    s = str(uuid.uuid4())
    assert isinstance(rt.keys, InMemoryKeyStore) and rt.mapper.cipher.keys is rt.keys
    async with rt.engine.begin() as conn:
        await rt.append(conn, [note(s, "call me on +14155550123")])
    async with rt.engine.connect() as conn:
        raw = (
            await conn.execute(select(event_log.c.record).where(event_log.c.subject_id == s))
        ).scalar_one()
        [read] = await rt.store.read_subject(conn, s)
    assert json.loads(raw)["payload"]["note"][ENC_MARK] == "A256GCM"
    assert read.payload.note == "call me on +14155550123"

    assert await shred_subject(rt, s, "test erasure", Actor.system("tests"))
    async with rt.engine.connect() as conn:
        shredded, destroyed = await rt.store.read_subject(conn, s)
        assert (await verify_log(conn)).ok
    assert shredded.payload.note == REDACTED
    assert destroyed.event_type == "platform.SubjectKeyDestroyed"
    with pytest.raises(SubjectErased):
        async with rt.engine.begin() as conn:
            await rt.append(conn, [note(s, "after erasure")])

    keystore = engine_for(fresh_stack.settings("identity").keystore_url, pool_size=1)
    try:
        async with keystore.connect() as conn:
            rows = (
                await conn.execute(
                    select(func.count())
                    .select_from(subject_keys)
                    .where(subject_keys.c.subject_id == s)
                )
            ).scalar_one()
    finally:
        await keystore.dispose()
    assert rows == 0  # the PostgreSQL key store was never asked
