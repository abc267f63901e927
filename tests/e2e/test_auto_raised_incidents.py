"""`expensura log verify` raises an incident, end to end (SEC-4): a superuser rewrites a
record of identity's log; the command names the broken link, exits 1 and raises an incident
in the running incident service through its internal route, as identity. Run again, it
raises none (the same finding). With incident down, it still names the break and exits 1,
saying that the incident could not be raised."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from expensura_events.mapper import canonical_json
from expensura_events.runtime import ServiceRuntime
from expensura_events.tables import event_log
from expensura_events.testing.events import note
from expensura_identity.app import service_definition as identity
from expensura_ops.testing.stack import LocalStack

pytestmark = pytest.mark.obligation("SEC-4")

RAISED = re.compile(r"identity: incident ([0-9a-f-]{36}) raised \(log-verify-failed\)")


async def scalar(stack: LocalStack, service: str, sql: str, **params: object) -> Any:
    engine = create_async_engine(stack.database_url(service, admin=True))
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar_one()
    finally:
        await engine.dispose()


async def break_identity_chain(stack: LocalStack) -> None:
    """Five records appended by identity, then the third rewritten by a superuser (who can
    switch the append-only trigger off; the chain still tells)."""
    rt = ServiceRuntime(identity, stack.settings("identity"))
    try:
        async with rt.engine.begin() as conn:
            await rt.append(conn, [note(str(uuid.uuid4()), f"n{i}") for i in range(5)])
    finally:
        await rt.close()
    owner = create_async_engine(stack.database_url("identity", admin=True))
    try:
        async with owner.begin() as conn:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            row = (
                await conn.execute(select(event_log.c.record).where(event_log.c.seq == 3))
            ).scalar_one()
            forged = json.loads(row)
            forged["purpose"] = "marketing"
            await conn.execute(
                event_log.update().where(event_log.c.seq == 3).values(record=canonical_json(forged))
            )
    finally:
        await owner.dispose()


async def test_a_broken_chain_raises_one_incident_and_is_reported_even_with_incident_down(
    fresh_stack: LocalStack,
) -> None:
    fresh_stack.start("incident")
    await break_identity_chain(fresh_stack)

    first = fresh_stack.cli("log", "verify", "identity", check=False)
    output = first.stdout + first.stderr
    assert first.returncode == 1, output
    assert "BROKEN at sequence 3" in output
    found = RAISED.search(output)
    assert found, output
    iid = uuid.UUID(found.group(1))
    row = "SELECT {} FROM incidents WHERE incident_id = :i"
    assert await scalar(fresh_stack, "incident", row.format("source"), i=iid) == "log-verify-failed"
    assert (
        await scalar(fresh_stack, "incident", row.format("reported_by"), i=iid)
        == "system:log-verify-failed"
    )
    summary = await scalar(fresh_stack, "incident", row.format("summary"), i=iid)
    assert "identity's log chain broken at sequence 3" in summary
    reported = await scalar(
        fresh_stack,
        "incident",
        "SELECT convert_from(record, 'UTF8') FROM event_log WHERE stream_id = :s",
        s=f"incident-{iid}",
    )
    event = json.loads(reported)
    assert event["actor"] == {"kind": "system", "id": "system:log-verify-failed", "role": None}
    assert event["subject_id"] is None and event["payload"]["source"] == "log-verify-failed"

    # The same finding again: no second incident.
    again = fresh_stack.cli("log", "verify", "identity", check=False)
    assert again.returncode == 1
    assert f"finding already reported: incident {iid}" in again.stdout, again.stdout
    count = "SELECT count(*) FROM incidents WHERE source = 'log-verify-failed'"
    assert await scalar(fresh_stack, "incident", count) == 1

    # Incident down: the break is still named, the exit code still 1, and it says so.
    fresh_stack.processes["incident"].stop()
    alone = fresh_stack.cli("log", "verify", "identity", check=False)
    said = alone.stdout + alone.stderr
    assert alone.returncode == 1, said
    assert "BROKEN at sequence 3" in said
    assert "identity: the incident could not be raised: incident unreachable" in said
    assert "Traceback" not in said
