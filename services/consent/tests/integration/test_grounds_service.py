"""Four eyes on legal grounds against consent's real database: a ground naming recipients
is pending and allows nothing until a second privacy officer approves it; the requester, an
administrator or an officer without MFA cannot approve; a request is decided once, even by
two officers at the same moment. A staff read of a subject's grounds is recorded for them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from expensura_consent.decisions import service as decisions
from expensura_consent.grounds import service as grounds
from expensura_consent.grounds.domain import GroundState, Grouping, Invocation
from expensura_events.catalog.platform import PersonalDataAccessed
from expensura_events.envelope import Actor, utcnow
from expensura_events.four_eyes import AlreadyDecided, Approver, NotAnApprover, Verdict
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import PUBLIC_RECIPIENT, ActorKind, LegalGround, Purpose

from .conftest import logged, new_subject

ASKER = Actor(kind=ActorKind.STAFF, id="officer-1")
PRIVACY = frozenset({"privacy-officer"})


def approver(staff_id: str, roles: frozenset[str] = PRIVACY, *, mfa: bool = True) -> Approver:
    return Approver(ActorKind.STAFF, staff_id, roles, mfa)


def to_the_public(subject: str) -> Invocation:
    return Invocation(
        subject_id=subject,
        purpose=Purpose.LEGAL_COMPLIANCE,
        ground=LegalGround.OTHER_LAW,
        evidence_reference="sha256:court-order-9",
        categories=frozenset({"pd:Contact"}),
        recipients=frozenset({PUBLIC_RECIPIENT}),
        reason="Publication ordered by the court",
        expires_at=utcnow() + timedelta(days=1),
    )


async def public_allowed(rt: ServiceRuntime, subject: str) -> bool:
    decided = await decisions.make_decision(
        rt,
        decisions.Question(
            subject_id=subject,
            purpose=Purpose.LEGAL_COMPLIANCE,
            categories=frozenset({"pd:Contact"}),
            recipient=PUBLIC_RECIPIENT,
            requester="sharing-gateway",
        ),
    )
    return decided.decision.allowed


@pytest.mark.obligation("SEC-2", "USE-11")
async def test_one_officer_cannot_release_alone(rt: ServiceRuntime) -> None:
    subject = new_subject()
    pending = await grounds.invoke_ground(rt, to_the_public(subject), ASKER)
    assert pending.state is GroundState.PENDING
    assert not await public_allowed(rt, subject)
    refused = [
        approver(ASKER.id),  # approving their own request
        approver("admin-1", frozenset({"administrator"})),
        approver("officer-2", mfa=False),
    ]
    for who in refused:
        for verdict in Verdict:
            with pytest.raises(NotAnApprover):
                await grounds.decide_request(rt, pending.invocation_id, who, verdict, "fine")
    assert not await public_allowed(rt, subject)
    types = [t for t, _ in await logged(rt, subject)]
    assert "consent.LegalGroundInvocationRequested" in types
    assert not {"consent.LegalGroundInvocationApproved", "consent.LegalGroundInvoked"} & set(types)


@pytest.mark.obligation("SEC-2", "USE-11")
async def test_a_second_officer_approves_once_and_only_then_the_ground_allows(
    rt: ServiceRuntime,
) -> None:
    subject = new_subject()
    pending = await grounds.invoke_ground(rt, to_the_public(subject), ASKER)
    approved = await grounds.decide_request(
        rt, pending.invocation_id, approver("officer-2"), Verdict.APPROVE, "order checked"
    )
    assert approved.state is GroundState.ACTIVE and approved.decided_by == "staff:officer-2"
    assert await public_allowed(rt, subject)
    for verdict in Verdict:
        with pytest.raises(AlreadyDecided):
            await grounds.decide_request(
                rt, pending.invocation_id, approver("officer-3"), verdict, "again"
            )
    assert [t for t, _ in await logged(rt, subject) if "Ground" in t] == [
        "consent.LegalGroundInvocationRequested",
        "consent.LegalGroundInvocationApproved",
    ]


@pytest.mark.obligation("SEC-2")
async def test_a_rejected_or_withdrawn_request_never_allows(rt: ServiceRuntime) -> None:
    subject = new_subject()
    rejected = await grounds.invoke_ground(rt, to_the_public(subject), ASKER)
    done = await grounds.decide_request(
        rt, rejected.invocation_id, approver("officer-2"), Verdict.REJECT, "no order attached"
    )
    assert done.state is GroundState.REJECTED and not await public_allowed(rt, subject)
    withdrawn = await grounds.invoke_ground(rt, to_the_public(subject), ASKER)
    await grounds.revoke_ground(rt, withdrawn.invocation_id, ASKER)
    with pytest.raises(AlreadyDecided):
        await grounds.decide_request(
            rt, withdrawn.invocation_id, approver("officer-2"), Verdict.APPROVE, "late"
        )
    assert not await public_allowed(rt, subject)


@pytest.mark.obligation("SEC-2")
async def test_two_officers_deciding_at_once_decide_it_once(rt: ServiceRuntime) -> None:
    subject = new_subject()
    pending = await grounds.invoke_ground(rt, to_the_public(subject), ASKER)
    outcomes = await asyncio.gather(
        grounds.decide_request(
            rt, pending.invocation_id, approver("officer-2"), Verdict.APPROVE, "checked"
        ),
        grounds.decide_request(
            rt, pending.invocation_id, approver("officer-3"), Verdict.REJECT, "not convinced"
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(o, AlreadyDecided) for o in outcomes) == 1, outcomes
    decided = [
        t for t, _ in await logged(rt, subject) if "InvocationApproved" in t or "Rejected" in t
    ]
    assert len(decided) == 1


async def test_a_ground_for_processing_inside_needs_no_second_officer(rt: ServiceRuntime) -> None:
    subject = new_subject()
    inside = await grounds.invoke_ground(
        rt, Invocation(**{**to_the_public(subject).__dict__, "recipients": frozenset()}), ASKER
    )
    assert inside.state is GroundState.ACTIVE
    with pytest.raises(AlreadyDecided):
        await grounds.decide_request(
            rt, inside.invocation_id, approver("officer-2"), Verdict.APPROVE, "nothing to do"
        )


@pytest.mark.obligation("SEC-3")
async def test_every_staff_read_of_a_subjects_consent_and_grounds_is_recorded_for_them(
    rt: ServiceRuntime,
) -> None:
    subject = new_subject()
    await grounds.invoke_ground(rt, to_the_public(subject), ASKER)
    reader = Actor(kind=ActorKind.STAFF, id="auditor-1", role="privacy-officer")
    await decisions.basis_at(
        rt, subject, Purpose.LEGAL_COMPLIANCE, utcnow(), reader, case_reference="AUDIT-7"
    )
    await grounds.report(rt, Grouping.GROUND, reader)
    async with rt.engine.connect() as conn:
        events = await rt.store.read_subject(conn, subject)
    reads = [e for e in events if isinstance(e.payload, PersonalDataAccessed)]
    assert [(e.actor.id, e.actor.role, e.purpose) for e in reads] == [
        ("auditor-1", "privacy-officer", Purpose.LEGAL_COMPLIANCE)
    ] * 2
    assert reads[0].payload.fields == ["consent-records", "legal-grounds"]
    assert reads[0].payload.case_reference == "AUDIT-7"
    assert reads[1].payload.fields == ["legal-grounds"]


@pytest.mark.obligation("SEC-1")
async def test_evidence_and_reason_are_kept_sealed_and_opened_only_for_the_officer_shown_them(
    rt: ServiceRuntime,
) -> None:
    """A ground's evidence and reason are free text about the subject's case: the table
    keeps them sealed with the subject's key (a dump shows neither), the officer's views open
    them, and a decision's answer names the invocation, never its evidence."""
    subject = new_subject()
    asked = dataclasses.replace(
        to_the_public(subject),
        evidence_reference=f"court order {uuid.uuid4().hex}",
        reason=f"ordered in case {uuid.uuid4().hex}",
    )
    invoked = await grounds.invoke_ground(rt, asked, ASKER)
    assert (invoked.evidence_reference, invoked.reason) == (asked.evidence_reference, asked.reason)
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT * FROM ground_invocations WHERE invocation_id = :id"),
                {"id": invoked.invocation_id},
            )
        ).one()
    dumped = json.dumps([str(v) for v in row], default=str)
    assert asked.evidence_reference not in dumped and asked.reason not in dumped
    assert row.evidence_reference is None and row.evidence_sealed["$enc"]
    approved = await grounds.decide_request(
        rt, invoked.invocation_id, approver("officer-2"), Verdict.APPROVE, "order verified"
    )
    assert approved.evidence_reference == asked.evidence_reference
    _, shown = await grounds.report(rt, Grouping.GROUND, ASKER)
    [mine] = [r for r in shown if r.invocation_id == invoked.invocation_id]
    assert (mine.evidence_reference, mine.reason) == (asked.evidence_reference, asked.reason)
    decided = await decisions.make_decision(
        rt,
        decisions.Question(
            subject_id=subject,
            purpose=Purpose.LEGAL_COMPLIANCE,
            categories=frozenset({"pd:Contact"}),
            recipient=PUBLIC_RECIPIENT,
            requester="sharing-gateway",
        ),
    )
    assert decided.decision.allowed and decided.decision.ground is not None
    assert decided.decision.ground.evidence_reference == ""  # the decision never opens it


@pytest.mark.obligation("SEC-1")
async def test_texts_stored_in_plaintext_before_sealing_are_sealed_at_start(
    rt: ServiceRuntime,
) -> None:
    subject = new_subject()
    invoked = await grounds.invoke_ground(rt, to_the_public(subject), ASKER)
    legacy = ("sha256:an-old-order", "recorded before sealing")
    async with rt.engine.begin() as conn:  # a row as consent_0005 left it
        await conn.execute(
            text(
                "UPDATE ground_invocations SET evidence_reference = :e, reason = :r, "
                "evidence_sealed = NULL, reason_sealed = NULL WHERE invocation_id = :id"
            ),
            {"e": legacy[0], "r": legacy[1], "id": invoked.invocation_id},
        )
    await grounds.seal_legacy_ground_texts(rt, asyncio.Event())
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT evidence_reference, reason, evidence_sealed::text AS e, "
                    "reason_sealed::text AS r FROM ground_invocations WHERE invocation_id = :id"
                ),
                {"id": invoked.invocation_id},
            )
        ).one()
    assert (row.evidence_reference, row.reason) == (None, None)
    assert legacy[0] not in row.e and legacy[1] not in row.r
    _, shown = await grounds.report(rt, Grouping.GROUND, ASKER)
    [mine] = [r for r in shown if r.invocation_id == invoked.invocation_id]
    assert (mine.evidence_reference, mine.reason) == legacy
