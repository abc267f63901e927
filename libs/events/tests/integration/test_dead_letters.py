"""Events a projection cannot apply are parked, and the rest goes on (real PostgreSQL, broker).

The poison is an `identity.AccountOpened` whose e-mail holds a NUL character: the incident
service's `notification-contacts` projection refuses to keep it (no notice could reach it).
A defect of the database itself is a trigger that refuses some addresses. The poison is
appended to identity's log directly, as a bug or an attacker with write access to the log
would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import httpx
import pytest
import structlog
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql.asyncpg import (
    AsyncAdapt_asyncpg_connection,
    AsyncAdapt_asyncpg_dbapi,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from expensura_events import deadletters
from expensura_events.catalog.rights import ErasureRequested
from expensura_events.envelope import Actor, EventEnvelope
from expensura_events.kafka import KafkaSettings
from expensura_events.projections import (
    LocalLogFeed,
    ProjectionRunner,
    rebuild,
    retry_dead_letter,
)
from expensura_events.runtime import ServiceRuntime
from expensura_events.store import StoredRecord
from expensura_events.tables import event_log, projection_inbox
from expensura_events.testing.events import forged_account_opened
from expensura_events.vocabulary import Purpose
from expensura_identity.app import service_definition as identity
from expensura_incident.app import service_definition as incident
from expensura_incident.contacts.domain import email_hmac
from expensura_incident.contacts.projection import NotificationContacts
from expensura_incident.contacts.service import contact_hmac_key
from expensura_incident.tables import notification_contacts
from expensura_ops.testing.stack import LocalStack, eventually

CONTACTS = "notification-contacts"
BLOCKED = ("blocked-1@example.com", "blocked-2@example.com")


def contacts_projection(inc: ServiceRuntime) -> NotificationContacts:
    """Incident's projection bound to its runtime (whose key store seals the contacts)."""
    projection = NotificationContacts()
    projection.bind(inc)
    return projection


@pytest.fixture
async def runtimes(fresh_stack: LocalStack) -> AsyncIterator[tuple[ServiceRuntime, ServiceRuntime]]:
    idp = ServiceRuntime(identity, fresh_stack.settings("identity"))
    inc = ServiceRuntime(incident, fresh_stack.settings("incident"))
    try:
        yield idp, inc
    finally:
        await idp.close()
        await inc.close()


def fast_kafka(rt: ServiceRuntime) -> KafkaSettings:
    """Short group timeouts, so that a consumer that restarts rejoins in about a second."""
    return replace(rt.settings.kafka(), session_timeout_ms=2000, heartbeat_interval_ms=500)


def poison_email() -> str:
    return f"poison-{uuid.uuid4().hex[:12]}\x00@example.com"


async def sign_ups(idp: ServiceRuntime, emails: list[str]) -> list[EventEnvelope]:
    """One AccountOpened per e-mail, appended to identity's log; returns them as recorded."""
    recorded = []
    for email in emails:
        async with idp.engine.begin() as conn:
            recorded += await idp.append(conn, [forged_account_opened(str(uuid.uuid4()), email)])
    async with idp.engine.connect() as conn:  # positions come after commit (the sequencer)
        rows = await conn.execute(select(event_log.c.event_id, event_log.c.seq))
        at = {r.event_id: r.seq for r in rows}
    return [e.model_copy(update={"sequence": at[e.event_id]}) for e in recorded]


async def contacts(rt: ServiceRuntime) -> set[str]:
    async with rt.engine.connect() as conn:
        return set((await conn.execute(select(notification_contacts.c.subject_id))).scalars())


async def letters(rt: ServiceRuntime) -> list[deadletters.DeadLetter]:
    async with rt.engine.connect() as conn:
        return await deadletters.find(conn, projection=CONTACTS)


def good_emails(n: int) -> list[str]:
    return [f"good-{uuid.uuid4().hex[:8]}@example.com" for _ in range(n)]


async def test_an_event_that_cannot_apply_is_parked_and_every_later_event_applies(
    runtimes: tuple[ServiceRuntime, ServiceRuntime],
) -> None:
    idp, inc = runtimes
    secret = poison_email()
    events = await sign_ups(idp, [*good_emails(3), secret, *good_emails(3)])
    poison = events[3]
    while await idp.relay.publish_batch():
        pass

    runner = ProjectionRunner(
        inc.engine, inc.mapper, contacts_projection(inc), fast_kafka(inc), "test-contacts"
    )
    stop = asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(runner.run(stop))
        try:

            async def done() -> bool:
                return runner.stats.applied == 6 and runner.stats.dead_lettered == 1

            await eventually(done, what="six applied and one parked")
        finally:
            stop.set()
            await task

    assert await contacts(inc) == {e.subject_id for e in events if e is not poison}
    [letter] = await letters(inc)
    assert (letter.event_id, letter.status, letter.source) == (
        str(poison.event_id),
        "parked",
        "identity",
    )
    assert (letter.event_type, letter.seq, letter.subject_id) == (
        "identity.AccountOpened",
        poison.sequence,
        poison.subject_id,
    )
    assert letter.error_class == "UnusableContact"  # refused before anything is stored
    async with inc.engine.connect() as conn:  # not "applied": a retry can still apply it
        inbox = set((await conn.execute(select(projection_inbox.c.event_id))).scalars())
    assert poison.event_id not in inbox and len(inbox) == 6
    alerts = [e for e in logs if e["event"] == "projection.dead_lettered"]
    assert [(a["event_id"], a["error"], a.get("sqlstate")) for a in alerts] == [
        (str(poison.event_id), "UnusableContact", None)
    ]
    local_part = secret.split("\x00")[0]
    assert local_part not in repr(logs) + repr(letter)


async def test_an_unavailable_database_fails_the_batch_and_parks_nothing(
    runtimes: tuple[ServiceRuntime, ServiceRuntime],
) -> None:
    idp, inc = runtimes
    events = await sign_ups(idp, good_emails(4))
    while await idp.relay.publish_batch():
        pass

    class StartingUp(NotificationContacts):
        """Fails once as a restarting server would: "the database system is starting up"."""

        failed = False

        async def apply(self, conn: AsyncConnection, event: EventEnvelope) -> None:
            if not StartingUp.failed and event.event_id == events[2].event_id:
                StartingUp.failed = True
                dbapi = AsyncAdapt_asyncpg_dbapi(asyncpg)
                try:
                    AsyncAdapt_asyncpg_connection._handle_exception_no_connection(
                        dbapi,
                        asyncpg.exceptions.CannotConnectNowError(
                            "the database system is starting up"
                        ),
                    )
                except Exception as adapted:
                    raise sa_exc.DBAPIError.instance("SELECT 1", (), adapted, dbapi.Error) from (
                        adapted
                    )
            await super().apply(conn, event)

    starting_up = StartingUp()
    starting_up.bind(inc)
    runner = ProjectionRunner(inc.engine, inc.mapper, starting_up, fast_kafka(inc), "test-restart")
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await eventually(lambda: _true(runner.stats.applied == 4), what="all four applied")
    finally:
        stop.set()
        await task
    assert runner.stats.errors >= 1 and runner.stats.dead_lettered == 0
    assert await letters(inc) == []
    assert await contacts(inc) == {e.subject_id for e in events}


async def _true(value: bool) -> bool:
    return value


class FailingFeed:
    """A source's log feed that becomes unreachable after its first page."""

    def __init__(self, feed: LocalLogFeed) -> None:
        self.feed, self.source, self.pages = feed, feed.source, 0

    async def read(self, after_seq: int, limit: int) -> list[StoredRecord]:
        self.pages += 1
        if self.pages > 1:
            raise httpx.ConnectError("identity is unreachable")
        return await self.feed.read(after_seq, limit)


async def test_a_rebuild_parks_the_poison_and_a_failed_rebuild_leaves_the_read_model_as_it_was(
    runtimes: tuple[ServiceRuntime, ServiceRuntime],
) -> None:
    idp, inc = runtimes
    secret = poison_email()
    events = await sign_ups(idp, [*good_emails(2), secret, *good_emails(3)])
    feed = LocalLogFeed(idp.engine, "identity")
    good = {e.subject_id for e in events} - {events[2].subject_id}

    with structlog.testing.capture_logs() as logs:
        outcome = await rebuild(inc.engine, inc.mapper, contacts_projection(inc), [feed])
    assert outcome.applied == 5
    assert [p.event_id for p in outcome.parked] == [str(events[2].event_id)]
    assert await contacts(inc) == good
    assert secret.split("\x00")[0] not in repr(logs)

    # the same rebuild again, but identity's feed fails half-way: nothing changes
    with pytest.raises(httpx.ConnectError):
        await rebuild(
            inc.engine, inc.mapper, contacts_projection(inc), [FailingFeed(feed)], batch=2
        )
    assert await contacts(inc) == good
    [letter] = await letters(inc)
    assert (letter.status, letter.attempts) == ("parked", 1)  # the failed rebuild left no trace

    # a rebuild that completes counts the attempt again
    await rebuild(inc.engine, inc.mapper, contacts_projection(inc), [feed])
    assert [(x.status, x.attempts) for x in await letters(inc)] == [("parked", 2)]


async def test_a_skipped_event_stays_skipped_through_rebuilds(
    runtimes: tuple[ServiceRuntime, ServiceRuntime],
) -> None:
    idp, inc = runtimes
    events = await sign_ups(idp, [poison_email(), *good_emails(1)])
    feed = LocalLogFeed(idp.engine, "identity")
    await rebuild(inc.engine, inc.mapper, contacts_projection(inc), [feed])
    async with inc.engine.begin() as conn:
        skipped = await deadletters.skip(
            conn, CONTACTS, str(events[0].event_id), "NUL in the address", "ops@example"
        )
    assert skipped is not None and skipped.status == "skipped"

    outcome = await rebuild(inc.engine, inc.mapper, contacts_projection(inc), [feed])
    assert (outcome.applied, outcome.duplicates, outcome.parked) == (1, 1, [])
    [letter] = await letters(inc)
    assert (letter.status, letter.attempts, letter.reason, letter.resolved_by) == (
        "skipped",
        1,
        "NUL in the address",
        "ops@example",
    )


async def refuse_blocked_addresses(stack: LocalStack) -> AsyncEngine:
    """A defect in the read model, until fixed: it refuses the `BLOCKED` addresses (by their
    keyed digest: the row keeps no address)."""
    rt = ServiceRuntime(incident, stack.settings("incident"))
    try:
        key = await contact_hmac_key(rt)  # incident's own look-up secret
    finally:
        await rt.close()
    digests = ", ".join(f"'{email_hmac(key, address)}'" for address in BLOCKED)
    owner = create_async_engine(stack.database_url("incident", admin=True))
    async with owner.begin() as conn:
        await conn.execute(
            text(f"""CREATE FUNCTION refuse_blocked() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                      IF NEW.email_hmac IN ({digests}) THEN RAISE EXCEPTION 'blocked'; END IF;
                      RETURN NEW;
                    END $$""")
        )
        await conn.execute(
            text("""CREATE TRIGGER refuse_blocked BEFORE INSERT ON notification_contacts
                    FOR EACH ROW EXECUTE FUNCTION refuse_blocked()""")
        )
    return owner


async def test_a_rebuild_after_the_fix_applies_and_resolves_a_parked_event(
    fresh_stack: LocalStack, runtimes: tuple[ServiceRuntime, ServiceRuntime]
) -> None:
    idp, inc = runtimes
    owner = await refuse_blocked_addresses(fresh_stack)
    [blocked] = await sign_ups(idp, ["blocked-2@example.com"])
    feed = LocalLogFeed(idp.engine, "identity")
    assert (
        len((await rebuild(inc.engine, inc.mapper, contacts_projection(inc), [feed])).parked) == 1
    )
    async with owner.begin() as conn:
        await conn.execute(text("DROP TRIGGER refuse_blocked ON notification_contacts"))
    await owner.dispose()
    outcome = await rebuild(inc.engine, inc.mapper, contacts_projection(inc), [feed])
    assert (outcome.applied, outcome.parked) == (1, [])
    [letter] = await letters(inc)
    assert (letter.status, letter.resolved_by) == ("resolved", "rebuild")
    assert await contacts(inc) == {blocked.subject_id}


async def test_retry_applies_a_parked_event_once_the_cause_is_fixed(
    fresh_stack: LocalStack, runtimes: tuple[ServiceRuntime, ServiceRuntime]
) -> None:
    idp, inc = runtimes
    owner = await refuse_blocked_addresses(fresh_stack)
    [blocked, fine] = await sign_ups(idp, ["blocked-1@example.com", "fine@example.com"])
    feed = LocalLogFeed(idp.engine, "identity")
    projection = contacts_projection(inc)
    outcome = await rebuild(inc.engine, inc.mapper, projection, [feed])
    assert [p.error_class for p in outcome.parked] == ["RaiseError"]

    again = await retry_dead_letter(
        inc.engine, inc.mapper, projection, feed, str(blocked.event_id), "ops"
    )
    assert not again.applied and again.letter.status == "retried"
    assert again.letter.attempts == 2

    async with owner.begin() as conn:  # the fix
        await conn.execute(text("DROP TRIGGER refuse_blocked ON notification_contacts"))
    await owner.dispose()
    done = await retry_dead_letter(
        inc.engine, inc.mapper, projection, feed, str(blocked.event_id), "ops"
    )
    assert done.applied
    assert (done.letter.status, done.letter.resolved_by) == ("resolved", "ops")
    assert await contacts(inc) == {blocked.subject_id, fine.subject_id}


async def test_an_erasure_during_a_rebuild_waits_for_it_and_then_purges_what_it_wrote(
    runtimes: tuple[ServiceRuntime, ServiceRuntime],
) -> None:
    idp, inc = runtimes
    [erased, kept] = await sign_ups(idp, good_emails(2))
    assert erased.subject_id is not None
    request = inc.envelope(
        ErasureRequested(request_id=uuid.uuid4()),
        stream_id=f"erasure-request-{erased.subject_id}",
        subject_id=erased.subject_id,
        actor=Actor.system("tests"),
        purpose=Purpose.LEGAL_COMPLIANCE,
    )
    feed = LocalLogFeed(idp.engine, "identity")
    paused, release = asyncio.Event(), asyncio.Event()

    class SlowFeed:
        source = "identity"

        async def read(self, after_seq: int, limit: int) -> list[StoredRecord]:
            records = await feed.read(after_seq, limit)
            if not records:  # everything is applied (uncommitted): pause before the commit
                paused.set()
                await release.wait()
            return records

    rebuilding = asyncio.create_task(
        rebuild(inc.engine, inc.mapper, contacts_projection(inc), [SlowFeed()])
    )
    await asyncio.wait_for(paused.wait(), 30)
    [lifecycle] = [r.projection for r in inc.runners if r.projection.name == "subject-lifecycle"]

    async def erase() -> None:
        async with inc.engine.begin() as conn:
            await lifecycle.apply(conn, request)

    erasing = asyncio.create_task(erase())
    await asyncio.sleep(0.5)
    assert not erasing.done(), "the erasure must wait for the rebuild's commit"
    release.set()
    await rebuilding
    await asyncio.wait_for(erasing, 30)
    assert await contacts(inc) == {kept.subject_id}
