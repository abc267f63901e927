"""Decision use cases: decide and record (RGT-4), look a decision up, and the as-of basis
folded from the log.

Answered from consent's own tables, which change in the same transaction as the events
that record them. The decision reads the consent records and invocations it relies on
`FOR SHARE` and records itself in that same transaction, while a withdrawal (or a
revocation) locks its record `FOR UPDATE`: the two are serialised. A decision that read a
record first commits before the withdrawal can change it (so it was decided before the
withdrawal was recorded); a withdrawal that locked first is waited for, and the decision
then reads the record withdrawn. Once a withdrawal is acknowledged, no decision allows
under that consent, while other services' projections may still be catching up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_consent.decisions import store
from expensura_consent.decisions.domain import (
    BASIS_CATEGORIES,
    BASIS_FIELDS,
    AsOf,
    Decision,
    DecisionNotFound,
    ReleaseRefused,
    basis_as_of,
    check_redemption,
    decide,
)
from expensura_consent.decisions.store import RecordedDecision
from expensura_consent.grounds import store as grounds
from expensura_consent.grounds.domain import STAFF_READ_PURPOSE
from expensura_consent.records import store as records
from expensura_consent.settings import ConsentSettings
from expensura_events.envelope import Actor, utcnow
from expensura_events.metrics import CONSENT_DECISION
from expensura_events.retention import Expiry
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import Purpose


@dataclass(frozen=True)
class Question:
    """May the subject's data of these categories be used for the purpose (and disclosed
    to the recipient)? `requester` is the asking service."""

    subject_id: str
    purpose: Purpose
    categories: frozenset[str]
    recipient: str | None
    requester: str
    fields: frozenset[str] | None = None  # a grant for these fields (a disclosure)


async def _decide_now(conn: AsyncConnection, question: Question) -> tuple[Decision, datetime]:
    """The decision as of now, with the records it relies on locked FOR SHARE until the
    caller's transaction ends (see the module's note).

    One read brings the consent records (locked), the restriction and whether any ground
    invocation exists. A consent that covers the question decides it whatever the grounds
    say (`decide` looks at grounds only when no consent allows), so the invocations are
    read, and locked, only when no consent allows and there are some: the usual answer,
    yes or no, costs one read."""
    relied = await records.relied_on(conn, question.subject_id, question.purpose)
    categories = set(question.categories)
    # read after the locks: a decision is as of when its records could no longer change
    now = utcnow()
    decision = decide(
        question.purpose, categories, question.recipient, now, relied.consents, [],
        relied.restriction,
    )  # fmt: skip
    if decision.allowed or not relied.any_ground:
        return decision, now
    invocations = await grounds.grounds_of(
        conn, question.subject_id, question.purpose, for_share=True
    )
    now = utcnow()  # after these locks too (no consent that did not allow then does now)
    decision = decide(
        question.purpose, categories, question.recipient, now, relied.consents, invocations,
        relied.restriction,
    )  # fmt: skip
    return decision, now


async def decide_in(conn: AsyncConnection, question: Question) -> RecordedDecision:
    """Decide and record the decision in the caller's transaction, holding the records it
    relied on until that transaction ends (see the module's note)."""
    decision, now = await _decide_now(conn, question)
    recorded = RecordedDecision(
        decision_id=uuid4(),
        subject_id=question.subject_id,
        purpose=question.purpose,
        recipient=question.recipient,
        decided_at=now,
        decision=decision,
    )
    await store.insert(
        conn, recorded, set(question.categories), question.requester, question.fields
    )
    return recorded


async def make_decision(rt: ServiceRuntime, question: Question) -> RecordedDecision:
    """Decide and record (`decide_in`), timed with its commit for
    `expensura_consent_decision_duration_seconds`."""
    started = time.perf_counter()
    async with rt.engine.begin() as conn:
        recorded = await decide_in(conn, question)
    CONSENT_DECISION.labels(service=rt.name).observe(time.perf_counter() - started)
    return recorded


@dataclass(frozen=True)
class ReleaseAsk:
    """What identity is about to release under a decision."""

    subject_id: str
    recipient: str
    categories: frozenset[str]
    fields: frozenset[str]


async def redeem(rt: ServiceRuntime, decision_id: UUID, ask: ReleaseAsk) -> RecordedDecision:
    """Redeem a decision as the grant for one release: once, in time, no wider than
    decided (`check_redemption`), and only if consent, deciding again now with the records
    locked, still allows it. The answer is the decision as of now. Raises ReleaseRefused;
    a refusal changes nothing (the grant stays unused)."""
    async with rt.engine.begin() as conn:
        grant = check_redemption(
            await store.grant_for_update(conn, decision_id),
            ask.subject_id,
            ask.recipient,
            set(ask.categories),
            set(ask.fields),
            utcnow(),
        )
        question = Question(
            subject_id=grant.subject_id,
            purpose=grant.purpose,
            categories=grant.categories,
            recipient=grant.recipient,
            requester="identity",
        )
        again, now = await _decide_now(conn, question)
        if not again.allowed:
            raise ReleaseRefused(f"no longer allowed: {again.reason}")
        await store.mark_released(conn, decision_id, now)
    return RecordedDecision(
        decision_id=decision_id,
        subject_id=grant.subject_id,
        purpose=grant.purpose,
        recipient=grant.recipient,
        decided_at=now,
        decision=again,
    )


async def decision(rt: ServiceRuntime, decision_id: UUID) -> RecordedDecision:
    """Raises DecisionNotFound."""
    async with rt.engine.connect() as conn:
        found = await store.get(conn, decision_id)
    if found is None:
        raise DecisionNotFound(decision_id)
    return found


async def basis_at(
    rt: ServiceRuntime,
    subject_id: str,
    purpose: Purpose,
    at: datetime,
    reader: Actor,
    case_reference: str | None = None,
) -> AsOf | None:
    """Which consent or ground was in effect at `at`, folded from consent's log (not its
    tables). A staff member's read of the subject's consent and legal state: it is recorded
    in the same transaction, a `platform.PersonalDataAccessed` the subject sees in their
    data (SEC-3)."""
    async with rt.engine.begin() as conn:
        events = await rt.store.read_subject(conn, subject_id)
        await rt.record_access(
            conn,
            subject_id=subject_id,
            actor=reader,
            purpose=STAFF_READ_PURPOSE,
            fields=BASIS_FIELDS,
            categories=BASIS_CATEGORIES,
            case_reference=case_reference,
        )
    return basis_as_of(events, purpose, at)


def retention(settings: ConsentSettings) -> list[Expiry]:
    """Consent's working rows that expire (ServiceDefinition.retention): decisions, long
    after their grant could be redeemed."""
    return [store.decision_expiry(settings.decision_retention_seconds)]
