"""Breach-notice use cases (SEC-5, USE-10): plan one notice per affected subject on the one
notification path, and publish the public notice when individual notice is impractical.

`send_breach_notices` does not send: it records each subject's notice as a customer notice
of kind `breach` (planned, due at once; its text rendered in the subject's language and
sealed with their key), and the notice sender (`notices.service.notice_sender`) delivers it
on the subject's channels with the retries, back-off and fall-back every notice has.

Idempotent per (incident, subject): a notice's id is derived from both
(`domain.breach_notice_id`), and it is inserted only if new, in the same transaction as its
link and the run's `incident.BreachNoticesPlanned` event. A re-run, or a run after a crash
mid-run (its transaction rolled back), plans each notice once; delivery is then the
sender's, which sends a notice once (see the README: what a crash inside the SMTP
conversation can and cannot do).

A subject no channel can reach (no address incident holds for any of their channels with a
configured provider) is recorded as a notice `failed` with reason "no channel can reach
the customer", and the incident's public notice covers them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import structlog

from expensura_events.catalog.incident_breach import BreachNoticesPlanned, PublicNoticePublished
from expensura_events.catalog.incident_notices import IncidentNoticeKind
from expensura_events.envelope import Actor, new_event_id, utcnow
from expensura_events.obligations import enforces
from expensura_events.runtime import ServiceRuntime
from expensura_events.sealing import seal
from expensura_events.vocabulary import Purpose
from expensura_incident.breach import domain, store
from expensura_incident.breach.domain import BreachContent, PublicNoticeDecision
from expensura_incident.contacts.domain import UnknownSubject
from expensura_incident.contacts.service import (
    contacts_of,
    notice_channels_of,
    notice_languages_of,
)
from expensura_incident.exposure.service import notifiable_subjects
from expensura_incident.notices import domain as notices
from expensura_incident.notices import providers
from expensura_incident.notices import service as notice_service
from expensura_incident.notices import store as notice_store
from expensura_incident.settings import incident_settings

log = structlog.get_logger("expensura.incident.breach")

PURPOSE = Purpose.SECURITY


@dataclass(frozen=True)
class BreachSubject:
    subject_id: str
    language: str | None = None  # the customer's language (BCP 47); None: English


@dataclass(frozen=True)
class BreachRun:
    planned: int
    already: int
    unreachable: int
    public_notice: PublicNoticeDecision


def _stream(incident_id: UUID) -> str:
    return f"incident-breach-{incident_id}"


@enforces("SEC-5", "USE-10")
async def send_breach_notices(
    rt: ServiceRuntime,
    incident_id: UUID,
    subjects: Sequence[BreachSubject],
    content: BreachContent,
    *,
    actor: Actor,
    now: datetime | None = None,
    blast_radius_id: UUID | None = None,
) -> BreachRun:
    """Plan the incident's notice to each subject (once, however often it is run), and
    publish the public notice if any subject cannot be reached (or the rule's threshold is
    crossed). `blast_radius_id`: the computation the subjects came from (recorded)."""
    now = now or utcnow()
    configured = frozenset(providers.senders(incident_settings(rt)))
    unique = list({s.subject_id: s for s in subjects}.values())
    ids = {s.subject_id: domain.breach_notice_id(incident_id, s.subject_id) for s in unique}
    planned = already = unreachable = 0
    languages: set[str] = set()
    event_id = new_event_id()
    async with rt.engine.begin() as conn:
        known = await store.known(conn, list(ids.values()))
        for subject in unique:
            notice_id = ids[subject.subject_id]
            if notice_id in known:
                already += 1
                continue
            rendered = domain.render(content, subject.language)
            try:
                contacts = await contacts_of(rt, subject.subject_id)
            except UnknownSubject:
                contacts = {}
            chosen = await notice_channels_of(rt, subject.subject_id)
            reach = notices.Reach.of(chosen, contacts, configured)
            notice = notices.plan(
                notice_id,
                subject.subject_id,
                IncidentNoticeKind.BREACH,
                rendered.title,
                rendered.body,
                now,
            )
            sealed = None
            if not reach.usable:
                unreachable += 1
                notice = notice.to(
                    notices.NoticeState.FAILED, reason=notices.NO_CHANNEL, next_attempt_at=None
                )
            else:
                sealed = await seal(
                    rt.mapper.cipher,
                    subject.subject_id,
                    notice_service.where(notice_id),
                    {"body": rendered.body},
                )
            await notice_store.add(conn, notice, sealed, event_id=event_id, at=now)
            await store.link(conn, notice_id, incident_id, rendered.language, now)
            languages.add(rendered.language)
            planned += 1
        event = rt.envelope(
            BreachNoticesPlanned(
                incident_id=incident_id,
                planned=planned,
                already=already,
                unreachable=unreachable,
                languages=sorted(languages),
                blast_radius_id=blast_radius_id,
            ),
            stream_id=_stream(incident_id),
            subject_id=None,
            actor=actor,
            purpose=PURPOSE,
        )
        await rt.append(conn, [event.model_copy(update={"event_id": event_id})])
    decision = domain.public_notice_needed(len(unique), unreachable)
    if decision.needed:
        await publish_public_notice(
            rt, incident_id, content, decision, subjects=len(unique), unreachable=unreachable
        )
    log.info("breach.planned", planned=planned, already=already, unreachable=unreachable)
    return BreachRun(planned, already, unreachable, decision)


@enforces("SEC-5", "USE-10")
async def send_breach_notices_from_radius(
    rt: ServiceRuntime,
    incident_id: UUID,
    blast_radius_id: UUID,
    content: BreachContent,
    *,
    actor: Actor,
    now: datetime | None = None,
) -> BreachRun:
    """Notify the notifiable subjects of a stored blast radius of the incident in one step:
    its sealed list opened here (never handed to the officer), each subject's notice in the
    language their preferences give (English without one). Raises UnknownBlastRadius."""
    subjects = await notifiable_subjects(rt, incident_id, blast_radius_id)
    languages = await notice_languages_of(rt, subjects)
    return await send_breach_notices(
        rt,
        incident_id,
        [BreachSubject(s, languages.get(s)) for s in subjects],
        content,
        actor=actor,
        now=now,
        blast_radius_id=blast_radius_id,
    )


@enforces("SEC-5")
async def publish_public_notice(
    rt: ServiceRuntime,
    incident_id: UUID,
    content: BreachContent,
    decision: PublicNoticeDecision,
    *,
    subjects: int,
    unreachable: int,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> bool:
    """Publish the incident's public notice (its English text, no personal data) and
    record `incident.PublicNoticePublished`; False if it was already published."""
    if not decision.needed:
        raise ValueError("no public notice is needed")
    now = now or utcnow()
    rule = domain.SUBSTITUTE_NOTICE[domain.DEFAULT_RULE]
    public_id = domain.public_notice_id(incident_id)
    notice = domain.public_notice(incident_id, content, decision.reasons)
    async with rt.engine.begin() as conn:
        if not await store.publish(
            conn,
            notice,
            public_id,
            decision,
            rule,
            subjects=subjects,
            unreachable=unreachable,
            at=now,
        ):
            return False
        event = PublicNoticePublished(
            incident_id=incident_id,
            public_notice_id=public_id,
            reasons=list(decision.reasons),
            subjects=subjects,
            unreachable=unreachable,
            substitute=decision.substitute,
            source=rule.source,
        )
        await rt.append(
            conn,
            [
                rt.envelope(
                    event,
                    stream_id=_stream(incident_id),
                    subject_id=None,
                    actor=actor or Actor.system("breach-notices"),
                    purpose=PURPOSE,
                )
            ],
        )
    log.info("breach.public_notice_published", reasons=list(decision.reasons))
    return True


async def breach_notice_counts(rt: ServiceRuntime, incident_id: UUID) -> Mapping[str, int]:
    async with rt.engine.connect() as conn:
        return await store.counts(conn, incident_id)


async def breach_notice_channels(
    rt: ServiceRuntime, incident_id: UUID
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """By channel and state, and the fall-backs per channel (`store.channel_counts`)."""
    async with rt.engine.connect() as conn:
        return await store.channel_counts(conn, incident_id)


async def public_notices(rt: ServiceRuntime) -> list[dict[str, object]]:
    async with rt.engine.connect() as conn:
        return await store.published(conn)
