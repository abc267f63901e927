"""Policy versions against consent's real database (no HTTP): published once, answered,
and each known subject notified of each later version exactly once (POL-1, POL-2)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from expensura_consent.policy import service as policy
from expensura_consent.policy.domain import UnknownVersion, VersionExists
from expensura_consent.subjects import service as subjects
from expensura_consent.subjects import store as subject_store
from expensura_consent.subjects.domain import SubjectNotKnown
from expensura_consent.tables import policy_notifications
from expensura_events.envelope import Actor, utcnow
from expensura_events.privacy.restrictions import Restriction, restrict
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind

from .conftest import logged, new_subject

OFFICER = Actor(kind=ActorKind.STAFF, id="officer-1")


async def test_the_first_version_is_published_once(rt: ServiceRuntime) -> None:
    assert await policy.publish_initial_version(rt)  # the fixture published it already
    async with rt.engine.connect() as conn:
        events = await rt.store.read_stream(conn, f"policy-{policy.INITIAL_VERSION}")
    assert [e.event_type for e in events] == ["consent.PolicyVersionPublished"]
    assert events[0].actor == Actor.system("consent")
    with pytest.raises(VersionExists):
        await policy.publish(
            rt,
            version=policy.INITIAL_VERSION,
            text="Some other text entirely.",
            summary="again",
            effective_at=utcnow(),
            actor=OFFICER,
        )


@pytest.mark.obligation("POL-1", "USE-10")
async def test_each_known_subject_is_notified_of_a_later_version_exactly_once(
    rt: ServiceRuntime,
) -> None:
    # known before the new version (and after the first, which is no change to them)
    before = utcnow()
    notified, stopped = [new_subject() for _ in range(3)], new_subject()
    async with rt.engine.begin() as conn:
        for subject in [*notified, stopped]:
            await subject_store.seen(conn, subject, before, opened_on="provided-by-user")
        await restrict(conn, stopped, Restriction.PROCESSING_STOPPED, uuid.uuid4())
    version = f"v-{uuid.uuid4().hex[:8]}"
    published = await policy.publish(
        rt,
        version=version,
        text="The new policy text, word for word.",
        summary="Clearer retention periods",
        effective_at=utcnow() + timedelta(days=30),
        actor=OFFICER,
    )
    assert (await policy.current(rt)).version == published.version == version
    while await policy.notify_batch(rt):
        pass
    assert await policy.notify_batch(rt) == 0
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(policy_notifications.c.subject_id).where(
                policy_notifications.c.version == version
            )
        )
        assert sorted(rows.scalars()) == sorted(notified)  # and none for the stopped subject
    for subject in notified:
        assert await logged(rt, subject) == [
            ("consent.PolicyChangeNotificationRequested", f"policy-notice-{version}-{subject}")
        ]
    assert (await subjects.get(rt, notified[0])).identity_events == 1


@pytest.mark.obligation("POL-2")
async def test_an_answer_is_recorded_and_only_to_a_published_version(
    rt: ServiceRuntime,
) -> None:
    subject = new_subject()
    refused = await policy.answer_version(rt, subject, policy.INITIAL_VERSION, False)
    assert not refused.accepted and refused.next_step is not None
    accepted = await policy.answer_version(rt, subject, policy.INITIAL_VERSION, True)
    assert accepted.accepted and accepted.next_step is None
    with pytest.raises(UnknownVersion):
        await policy.answer_version(rt, subject, "never-published", True)
    stream = f"policy-answer-{policy.INITIAL_VERSION}-{subject}"
    assert await logged(rt, subject) == [
        ("consent.PolicyVersionRefused", stream),
        ("consent.PolicyVersionAccepted", stream),
    ]
    with pytest.raises(SubjectNotKnown):
        await subjects.get(rt, subject)
