"""Policy version use cases: publish (the row and its event together), the current version,
the subject's answer, and the fan-out of notices.

A fresh system publishes its first version itself (the policy text shipped with the
service, a copy of `docs/spec/privacy-policy.txt`), so that apps always have a current
version to name in consents; later versions come from a privacy officer.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.policy import store
from expensura_consent.policy.domain import (
    NOTICE_BASIS,
    POLICY_BASIS,
    Answer,
    PolicyVersion,
    UnknownVersion,
    VersionExists,
    answer,
    answer_stream,
    new_version,
    notice,
    notice_stream,
    policy_stream,
)
from expensura_consent.settings import WORKER, consent_settings
from expensura_events.envelope import Actor, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, Purpose

log = structlog.get_logger("expensura.consent.policy")
INITIAL_VERSION = "1"
INITIAL_TEXT = Path(__file__).with_name("privacy-policy.txt")
INITIAL_SUMMARY = "The Expensura Privacy Agreement as first published"


async def _publish_in(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    *,
    version: str,
    text: str,
    summary: str,
    effective_at: datetime,
    actor: Actor,
) -> PolicyVersion | None:
    """Record the version and its event in the caller's transaction; None if it exists."""
    published, event = new_version(version, text, summary, effective_at, utcnow())
    if not await store.add_version(conn, published):
        return None
    await rt.append(
        conn,
        [
            rt.envelope(
                event,
                stream_id=policy_stream(version),
                subject_id=None,
                actor=actor,
                purpose=Purpose.COMMUNICATION,
                legal_basis=POLICY_BASIS,
            )
        ],
        expected_version=0,
    )
    return published


async def publish(
    rt: ServiceRuntime,
    *,
    version: str,
    text: str,
    summary: str,
    effective_at: datetime,
    actor: Actor,
) -> PolicyVersion:
    """Publish a version; every user is then notified once by the worker. Raises
    VersionExists."""
    async with rt.engine.begin() as conn:
        published = await _publish_in(
            rt,
            conn,
            version=version,
            text=text,
            summary=summary,
            effective_at=effective_at,
            actor=actor,
        )
    if published is None:
        raise VersionExists(version)
    rt.doorbell(WORKER).ring()  # committed: its notices go out now, not at the next poll
    return published


async def publish_initial_version(rt: ServiceRuntime) -> bool:
    """Publish version 1 from the shipped text unless some version exists; True once one
    does. Two processes starting together publish it once (the version is the key)."""
    async with rt.engine.begin() as conn:
        if not await store.any_version(conn):
            published = await _publish_in(
                rt,
                conn,
                version=INITIAL_VERSION,
                text=INITIAL_TEXT.read_text(encoding="utf-8"),
                summary=INITIAL_SUMMARY,
                effective_at=utcnow(),
                actor=Actor.system("consent"),
            )
            if published is not None:
                log.info("policy.initial_version_published", version=INITIAL_VERSION)
    return True


async def publish_initial_version_on_start(rt: ServiceRuntime) -> None:
    """At start-up; a database that is not up yet leaves it to the consent worker."""
    try:
        await publish_initial_version(rt)
    except Exception as exc:  # the worker tries again every round until it succeeds
        log.warning("policy.initial_version_deferred", error=repr(exc))


async def current(rt: ServiceRuntime) -> PolicyVersion:
    """The latest published version. Raises UnknownVersion before any is."""
    async with rt.engine.connect() as conn:
        found = await store.latest(conn)
    if found is None:
        raise UnknownVersion("none published")
    return found


async def answer_version(rt: ServiceRuntime, subject_id: str, version: str, accept: bool) -> Answer:
    """The subject accepts or refuses a published version (POL-2). Raises UnknownVersion."""
    given, event = answer(version, subject_id, accept, utcnow())
    async with rt.engine.begin() as conn:
        if not await store.is_published(conn, version):
            raise UnknownVersion(version)
        await store.record_answer(conn, given)
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=answer_stream(version, subject_id),
                    subject_id=subject_id,
                    actor=Actor(kind=ActorKind.USER, id=subject_id),
                    purpose=Purpose.ACCOUNT_MANAGEMENT,
                    legal_basis=POLICY_BASIS,
                )
            ],
        )
    return given


async def notify_batch(rt: ServiceRuntime) -> int:
    """Request notices for up to a batch of not-yet-notified (version, subject) pairs; the
    notice rows and their events commit together. Returns how many."""
    async with rt.engine.begin() as conn:
        await store.lock_fanout(conn)
        pending = await store.pending_notices(conn, consent_settings(rt).policy_notice_batch)
        if not pending:
            return 0
        recorded = await rt.append(
            conn,
            [
                rt.envelope(
                    notice(p.version, p.effective_at),
                    stream_id=notice_stream(p.version, p.subject_id),
                    subject_id=p.subject_id,
                    actor=Actor.system("consent"),
                    purpose=Purpose.COMMUNICATION,
                    legal_basis=NOTICE_BASIS,
                )
                for p in pending
            ],
        )
        await store.add_notices(
            conn,
            [(p, e.event_id) for p, e in zip(pending, recorded, strict=True)],
            utcnow(),
        )
        return len(pending)
