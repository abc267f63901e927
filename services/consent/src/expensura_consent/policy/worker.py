"""Fans a published policy version out to every known subject, exactly once each (POL-1).

The notification row and its event commit together, keyed by (version, subject): a crash
or a second worker can only skip what was already done, never do it twice.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from sqlalchemy import select, text, update

from expensura_consent.policy.service import publish_initial_version
from expensura_consent.records.domain import ConsentStatus
from expensura_consent.subjects.projection import known_subjects
from expensura_consent.tables import consent_records, policy_notifications, policy_versions
from expensura_events.catalog.consent import ConsentExpired, PolicyChangeNotificationRequested
from expensura_events.db_errors import error_fields
from expensura_events.envelope import Actor, LegalBasis, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.tables import subject_restrictions
from expensura_events.vocabulary import LegalGround, Purpose

log = structlog.get_logger("expensura.consent.worker")
BATCH = 200
_FANOUT_LOCK = 0x504F4C59  # "POLY"


async def consent_worker(rt: ServiceRuntime, stop: asyncio.Event) -> None:
    initial_published = False
    while not stop.is_set():
        try:
            if not initial_published:  # in case the database was down at start-up
                initial_published = await publish_initial_version(rt)
            while await notify_batch(rt):
                pass
            await expire_consents(rt)
        except Exception as exc:  # database down: next round
            log.warning("consent.worker_failed", **error_fields(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def notify_batch(rt: ServiceRuntime) -> int:
    """Request notices for up to BATCH not-yet-notified (version, subject) pairs."""
    async with rt.engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _FANOUT_LOCK})
        pending = (
            await conn.execute(
                select(
                    policy_versions.c.version,
                    policy_versions.c.effective_at,
                    known_subjects.c.subject_id,
                )
                .select_from(policy_versions.join(known_subjects, text("true")))
                .where(
                    # A notice is of a change: whoever signed up after the version was
                    # published agreed to it then (and the first version is no change).
                    known_subjects.c.account_opened_at < policy_versions.c.published_at,
                    ~select(subject_restrictions.c.subject_id)
                    .where(subject_restrictions.c.subject_id == known_subjects.c.subject_id)
                    .exists(),
                    ~select(policy_notifications.c.subject_id)
                    .where(
                        policy_notifications.c.version == policy_versions.c.version,
                        policy_notifications.c.subject_id == known_subjects.c.subject_id,
                    )
                    .exists(),
                )
                .limit(BATCH)
            )
        ).all()
        if not pending:
            return 0
        envelopes = [
            rt.envelope(
                PolicyChangeNotificationRequested(version=p.version, effective_at=p.effective_at),
                stream_id=f"policy-notice-{p.version}-{p.subject_id}",
                subject_id=p.subject_id,
                actor=Actor.system("consent"),
                purpose=Purpose.COMMUNICATION,
                legal_basis=LegalBasis(ground=LegalGround.OTHER_LAW, reference="POL-1"),
            )
            for p in pending
        ]
        recorded = await rt.append(conn, envelopes)
        await conn.execute(
            policy_notifications.insert(),
            [
                {
                    "version": p.version,
                    "subject_id": p.subject_id,
                    "event_id": e.event_id,
                    "requested_at": utcnow(),
                }
                for p, e in zip(pending, recorded, strict=True)
            ],
        )
        return len(pending)


async def expire_consents(rt: ServiceRuntime) -> int:
    """Consents past their expiry become ConsentExpired, in the tables and in the log."""
    now = utcnow()
    async with rt.engine.begin() as conn:
        rows = (
            await conn.execute(
                select(consent_records)
                .where(
                    consent_records.c.status.in_(
                        [ConsentStatus.GIVEN.value, ConsentStatus.RENEWED_GIVEN.value]
                    ),
                    consent_records.c.expires_at <= now,
                )
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in rows:
            await conn.execute(
                update(consent_records)
                .where(consent_records.c.consent_id == row.consent_id)
                .values(status=ConsentStatus.EXPIRED.value, updated_at=now)
            )
            await rt.append(
                conn,
                [
                    rt.envelope(
                        ConsentExpired(consent_id=row.consent_id, purpose=Purpose(row.purpose)),
                        stream_id=f"consent-{row.consent_id}",
                        subject_id=row.subject_id,
                        actor=Actor.system("consent"),
                        # bookkeeping of the consent itself, allowed even after a stop
                        purpose=Purpose.LEGAL_COMPLIANCE,
                        legal_basis=LegalBasis(
                            ground=LegalGround.CONSENT, reference=str(row.consent_id)
                        ),
                    )
                ],
            )
        return len(rows)
