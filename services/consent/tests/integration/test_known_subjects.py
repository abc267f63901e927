"""The known-subjects read model applies a rebuild's batch (`apply_many`) to the same rows as
its events applied one by one, onto rows that exist already as onto none."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from expensura_consent.subjects.projection import KnownSubjects, known_subjects
from expensura_events.envelope import EventEnvelope
from expensura_events.runtime import ServiceRuntime
from expensura_events.testing.events import forged_account_opened, note
from expensura_events.vocabulary import CollectionChannel

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def history(subjects: list[str]) -> list[EventEnvelope]:
    """Notes, openings (one subject opened twice, one never) and an event with no subject,
    interleaved, each at its own time."""
    a, b, c = subjects
    script = [(a, "note"), (b, "open"), (a, "open"), (None, "note"), (b, "note"), (a, "note")]
    script += [(c, "note"), (b, "open"), (c, "note")]
    events = []
    for i, (subject, kind) in enumerate(script):
        if kind == "open":
            event = forged_account_opened(subject, f"{i}@example.com")
            if i == 7:  # the second opening, on another channel
                payload = event.payload.model_copy(
                    update={"channel": CollectionChannel.ACTIVELY_COLLECTED}
                )
                event = event.model_copy(update={"payload": payload})
        else:
            event = note(subject or a, f"n{i}")
            if subject is None:
                event = event.model_copy(update={"subject_id": None})
        events.append(event.model_copy(update={"occurred_at": T0 + timedelta(minutes=i)}))
    return events


async def rows(rt: ServiceRuntime, subjects: list[str]) -> list[tuple[object, ...]]:
    t = known_subjects
    async with rt.engine.connect() as conn:
        found = await conn.execute(
            select(t.c.account_opened_at, t.c.channel, t.c.identity_events, t.c.last_event_at)
            .where(t.c.subject_id.in_(subjects))
            .order_by(t.c.subject_id)
        )
        return [tuple(r) for r in found]


async def test_a_batch_applies_as_its_events_one_by_one(rt: ServiceRuntime) -> None:
    projection = KnownSubjects()
    one_by_one = sorted(str(uuid.uuid4()) for _ in range(3))
    batched = sorted(str(uuid.uuid4()) for _ in range(3))
    first, then = history(one_by_one), history(batched)
    async with rt.engine.begin() as conn:
        for event in first[:2]:  # rows that exist before the batch
            await projection.apply(conn, event)
        await projection.apply_many(conn, then[:2])
        for event in first[2:]:
            await projection.apply(conn, event)
        await projection.apply_many(conn, then[2:])
    expected = await rows(rt, one_by_one)
    assert len(expected) == 3
    assert await rows(rt, batched) == expected
    assert sorted(r[2] for r in expected) == [2, 3, 3]
