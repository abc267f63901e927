"""Decisions against consent's real database (no HTTP): a decision and a withdrawal (or a
revocation) of what it relies on are serialised, so a withdrawal acknowledged before a
decision is always seen (RGT-4); the restriction refuses (RUL-2); each decision is kept."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from expensura_consent.decisions import service as decisions
from expensura_consent.decisions.domain import DecisionNotFound
from expensura_consent.grounds import service as grounds
from expensura_consent.grounds import store as ground_store
from expensura_consent.grounds.domain import Invocation
from expensura_consent.records import service as records
from expensura_events.envelope import Actor, utcnow
from expensura_events.privacy.restrictions import Restriction, restrict
from expensura_events.runtime import ServiceRuntime
from expensura_events.tables import event_log
from expensura_events.vocabulary import ActorKind, LegalGround, Purpose

from .conftest import given, new_subject

OFFICER = Actor(kind=ActorKind.STAFF, id="officer-1")
# Long enough that a decision not waiting for the lock would certainly have finished.
BLOCKED_FOR = 0.6


def question(subject: str, purpose: Purpose = Purpose.MARKETING) -> decisions.Question:
    return decisions.Question(
        subject_id=subject,
        purpose=purpose,
        categories=frozenset({"pd:Contact"}),
        recipient=None,
        requester="tests",
    )


@pytest.mark.obligation("RGT-4")
async def test_a_decision_waits_for_an_open_withdrawal_and_then_refuses(
    rt: ServiceRuntime,
) -> None:
    subject = new_subject()
    record = await given(rt, subject)
    assert (await decisions.make_decision(rt, question(subject))).decision.allowed
    async with rt.engine.connect() as conn:
        withdrawal = await conn.begin()
        await records.withdraw_in(rt, conn, subject, record.consent_id)
        deciding = asyncio.create_task(decisions.make_decision(rt, question(subject)))
        await asyncio.sleep(BLOCKED_FOR)
        assert not deciding.done(), "the decision did not wait for the withdrawal"
        await withdrawal.commit()
    decided = await asyncio.wait_for(deciding, 10)
    assert not decided.decision.allowed and decided.decision.consent_id is None


@pytest.mark.obligation("RGT-4")
async def test_a_withdrawal_waits_for_an_open_decision_which_is_logged_before_it(
    rt: ServiceRuntime,
) -> None:
    subject = new_subject()
    record = await given(rt, subject)
    async with rt.engine.connect() as conn:
        deciding = await conn.begin()
        decided = await decisions.decide_in(conn, question(subject))
        assert decided.decision.consent_id == record.consent_id
        withdrawing = asyncio.create_task(records.withdraw_consent(rt, subject, record.consent_id))
        await asyncio.sleep(BLOCKED_FOR)
        assert not withdrawing.done(), "the withdrawal did not wait for the decision"
        await deciding.commit()
    await asyncio.wait_for(withdrawing, 10)
    async with rt.engine.connect() as conn:
        withdrawn_at = (
            await conn.execute(
                select(event_log.c.recorded_at).where(
                    event_log.c.subject_id == subject,
                    event_log.c.event_type == "consent.ConsentWithdrawn",
                )
            )
        ).scalar_one()
    # what the withdrawal proof compares: the allowing decision came before the withdrawal
    assert decided.decided_at < withdrawn_at
    assert not (await decisions.make_decision(rt, question(subject))).decision.allowed


@pytest.mark.obligation("USE-11", "RGT-4")
async def test_a_decision_waits_for_an_open_revocation_of_the_ground_and_then_refuses(
    rt: ServiceRuntime,
) -> None:
    subject = new_subject()
    invocation = await grounds.invoke_ground(
        rt,
        Invocation(
            subject_id=subject,
            purpose=Purpose.DISPUTE_RESOLUTION,
            ground=LegalGround.CRIMINAL_INVESTIGATION,
            evidence_reference="sha256:order-1",
            categories=frozenset({"pd:Contact"}),
            recipients=frozenset(),
            reason="Production order",
            expires_at=utcnow() + timedelta(days=1),
        ),
        OFFICER,
    )
    asked = question(subject, Purpose.DISPUTE_RESOLUTION)
    allowed = await decisions.make_decision(rt, asked)
    assert allowed.decision.ground is not None
    assert allowed.decision.ground.invocation_id == invocation.invocation_id
    async with rt.engine.connect() as conn:
        revocation = await conn.begin()
        await ground_store.get(conn, invocation.invocation_id, for_update=True)
        assert await ground_store.revoke(conn, invocation.invocation_id, utcnow())
        deciding = asyncio.create_task(decisions.make_decision(rt, asked))
        await asyncio.sleep(BLOCKED_FOR)
        assert not deciding.done(), "the decision did not wait for the revocation"
        await revocation.commit()
    assert not (await asyncio.wait_for(deciding, 10)).decision.allowed


@pytest.mark.obligation("RUL-2")
async def test_a_stopped_subject_is_refused_under_a_valid_consent(rt: ServiceRuntime) -> None:
    subject = new_subject()
    await given(rt, subject)
    async with rt.engine.begin() as conn:
        await restrict(conn, subject, Restriction.PROCESSING_STOPPED, uuid.uuid4())
    refused = await decisions.make_decision(rt, question(subject))
    assert not refused.decision.allowed
    assert (
        refused.decision.reason == "processing stopped: the subject's account is processing-stopped"
    )


async def test_every_decision_is_kept_and_can_be_looked_up(rt: ServiceRuntime) -> None:
    subject = new_subject()
    refused = await decisions.make_decision(rt, question(subject))
    record = await given(rt, subject)
    allowed = await decisions.make_decision(rt, question(subject))
    assert await decisions.decision(rt, refused.decision_id) == refused
    assert await decisions.decision(rt, allowed.decision_id) == allowed
    assert allowed.decision.consent_id == record.consent_id
    with pytest.raises(DecisionNotFound):
        await decisions.decision(rt, uuid.uuid4())
