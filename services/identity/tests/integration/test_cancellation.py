"""Account cancellation against a real database: every move goes through the TRANSITIONS
table and one compare-and-set, so racing moves cannot both happen and a stale one changes
nothing; the last store's confirmation certifies, even after an escalation."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from expensura_events.catalog.platform import RetentionHoldEnded
from expensura_events.catalog.rights import (
    AccountCancellationWithdrawn,
    ErasureCertificateIssued,
    ErasureConfirmed,
    ErasureRequested,
    ProcessingStopped,
)
from expensura_events.envelope import Actor
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import Purpose
from expensura_events.web.app import create_app
from expensura_events.web.listeners import Listener, only_on
from expensura_identity.accounts import service as accounts
from expensura_identity.app import service_definition
from expensura_identity.rights import service, store
from expensura_identity.rights.domain import (
    ERASURE_PARTICIPANTS,
    CancellationAction,
    CancellationState,
    CannotWithdraw,
    IllegalTransition,
    cancellation_stream,
)
from expensura_identity.tables import cancellation_requests
from expensura_ops.testing.stack import LocalStack

from .conftest import runtime


async def _subject(rt: ServiceRuntime) -> str:
    email = f"leaving-{uuid.uuid4().hex[:8]}@example.com"
    return str((await accounts.sign_up(rt, email, None, "a long user password")).account_id)


async def _state(rt: ServiceRuntime, request_id: uuid.UUID) -> CancellationState:
    async with rt.engine.connect() as conn:
        state = (
            await conn.execute(
                select(cancellation_requests.c.state).where(
                    cancellation_requests.c.request_id == request_id
                )
            )
        ).scalar_one()
    return CancellationState(state)


async def _events(rt: ServiceRuntime, request_id: uuid.UUID) -> list[type]:
    async with rt.engine.connect() as conn:
        stream = await rt.store.read_stream(conn, cancellation_stream(request_id))
    return [type(e.payload) for e in stream]


async def _confirm(rt: ServiceRuntime, subject: str, request_id: uuid.UUID, name: str) -> None:
    confirmed = rt.envelope(
        ErasureConfirmed(request_id=request_id, service=name, purged={"rows": 1}),
        stream_id=f"erasure-{request_id}-{name}",
        subject_id=subject,
        actor=Actor.system(name),
        purpose=Purpose.LEGAL_COMPLIANCE,
    )
    async with rt.engine.begin() as conn:
        await service.confirm_erasure(rt, conn, confirmed)


@pytest.mark.obligation("RUL-2")
async def test_withdrawal_and_the_end_of_cooling_off_race_and_exactly_one_wins(
    provisioned: LocalStack,
) -> None:
    rt = runtime(provisioned, cooling_off_seconds=0)
    try:
        subject = await _subject(rt)
        request = await service.cancel_account(rt, subject)
        withdrawn, stopped = await asyncio.gather(
            service.withdraw(rt, subject),
            service.stop_processing(rt, request),
            return_exceptions=True,
        )
        events = await _events(rt, request.request_id)
        if isinstance(withdrawn, CannotWithdraw):
            assert stopped is not None and not isinstance(stopped, BaseException)
            assert await _state(rt, request.request_id) is CancellationState.PROCESSING_STOPPED
            assert ProcessingStopped in events and AccountCancellationWithdrawn not in events
        else:
            assert stopped is None
            assert await _state(rt, request.request_id) is CancellationState.WITHDRAWN
            assert AccountCancellationWithdrawn in events and ProcessingStopped not in events
    finally:
        await rt.close()


@pytest.mark.obligation("RUL-2")
async def test_a_stale_or_illegal_move_changes_nothing(rt: ServiceRuntime) -> None:
    subject = await _subject(rt)
    request = await service.cancel_account(rt, subject)
    async with rt.engine.begin() as conn:
        assert await store.transition(conn, request, CancellationAction.WITHDRAW) is not None
    async with rt.engine.begin() as conn:  # the same move again, from what it read before
        assert await store.transition(conn, request, CancellationAction.STOP_PROCESSING) is None
        with pytest.raises(IllegalTransition):
            await store.transition(conn, request, CancellationAction.CERTIFY)
    assert await _state(rt, request.request_id) is CancellationState.WITHDRAWN
    with pytest.raises(CannotWithdraw):
        await service.withdraw(rt, subject)
    # withdrawn is final: the subject may ask again, and that is a new request
    again = await service.cancel_account(rt, subject)
    assert again.request_id != request.request_id


@pytest.mark.obligation("RUL-2", "RGT-3")
async def test_from_request_to_certificate_and_a_late_chase_cannot_undo_it(
    provisioned: LocalStack,
) -> None:
    rt = runtime(provisioned, cooling_off_seconds=0, erasure_max_attempts=1)
    try:
        subject = await _subject(rt)
        request = await service.cancel_account(rt, subject)
        stopped = await service.stop_processing(rt, request)
        assert stopped is not None
        await service.request_erasure(rt, stopped)
        async with rt.engine.connect() as conn:
            erasing = await store.latest(conn, subject)
        assert erasing is not None and erasing.state is CancellationState.ERASING
        assert erasing.attempts == 1 and erasing.erasure_requested_at is not None
        for name in ERASURE_PARTICIPANTS[:-1]:
            await _confirm(rt, subject, request.request_id, name)
        await service.chase_stores(rt, erasing)  # one store missing, attempts used up
        assert await _state(rt, request.request_id) is CancellationState.ESCALATED
        await _confirm(rt, subject, request.request_id, ERASURE_PARTICIPANTS[-1])
        assert await _state(rt, request.request_id) is CancellationState.CERTIFIED
        cert = await service.certificate(rt, request.request_id)
        assert cert.services == sorted(ERASURE_PARTICIPANTS) and cert.subject_id == subject
        await service.chase_stores(rt, erasing)  # what a worker that read it earlier does
        async with rt.engine.begin() as conn:
            assert await store.transition(conn, erasing, CancellationAction.ASK_AGAIN) is None
        assert await _state(rt, request.request_id) is CancellationState.CERTIFIED
        events = await _events(rt, request.request_id)
        assert events.count(ErasureRequested) == 1 and events.count(ErasureCertificateIssued) == 1
    finally:
        await rt.close()


@pytest.mark.obligation("RGT-3")
async def test_no_certificate_while_the_key_store_still_holds_the_key_and_the_chase_finishes(
    provisioned: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between the erasure request and the shredding leaves the key: every store
    confirms, yet no certificate says "key destroyed" until the key store agrees."""
    rt = runtime(provisioned, cooling_off_seconds=0)
    try:
        subject = await _subject(rt)
        request = await service.cancel_account(rt, subject)
        stopped = await service.stop_processing(rt, request)
        assert stopped is not None

        async def crashed_before_shredding(*_: object) -> None:
            return None

        with monkeypatch.context() as patched:
            patched.setattr(service, "_shred", crashed_before_shredding)
            await service.request_erasure(rt, stopped)
        assert await rt.keys.get(subject) is not None
        for name in ERASURE_PARTICIPANTS:
            await _confirm(rt, subject, request.request_id, name)
        assert await _state(rt, request.request_id) is CancellationState.ERASING
        assert ErasureCertificateIssued not in await _events(rt, request.request_id)
        async with rt.engine.connect() as conn:
            erasing = await store.latest(conn, subject)
        assert erasing is not None
        await service.chase_stores(rt, erasing)  # the worker's next round
        assert await rt.keys.get(subject) is None
        assert await _state(rt, request.request_id) is CancellationState.CERTIFIED
        assert (await _events(rt, request.request_id)).count(ErasureCertificateIssued) == 1
    finally:
        await rt.close()


@pytest.mark.obligation("RUL-2", "USE-3")
async def test_the_certificate_shows_a_held_class_held_until_its_end_then_erased(
    provisioned: LocalStack,
) -> None:
    """Loans confirms the erasure keeping its application records under a hold; when loans
    records the hold's end in its own log, the certificate shows that class erased."""
    rt = runtime(provisioned, cooling_off_seconds=0)
    try:
        subject = await _subject(rt)
        request = await service.cancel_account(rt, subject)
        stopped = await service.stop_processing(rt, request)
        assert stopped is not None
        await service.request_erasure(rt, stopped)
        held = "reg-b-applications: 2 log records, held until 2029-01-06"
        for name in ERASURE_PARTICIPANTS:
            confirmed = rt.envelope(
                ErasureConfirmed(
                    request_id=request.request_id,
                    service=name,
                    purged={"rows": 1},
                    retained=[held] if name == "loans" else [],
                ),
                stream_id=f"erasure-{request.request_id}-{name}",
                subject_id=subject,
                actor=Actor.system(name),
                purpose=Purpose.LEGAL_COMPLIANCE,
            )
            async with rt.engine.begin() as conn:
                await service.confirm_erasure(rt, conn, confirmed)
        cert = await service.certificate(rt, request.request_id)
        assert [(h.service, h.hold, h.status) for h in cert.retention] == [
            ("loans", "reg-b-applications", "held until 2029-01-06")
        ]

        ended = rt.envelope(
            RetentionHoldEnded(hold="reg-b-applications", reason="retention period over"),
            stream_id=f"retention-{subject}-reg-b-applications",
            subject_id=subject,
            actor=Actor.system("loans"),
            purpose=Purpose.LEGAL_COMPLIANCE,
        ).model_copy(update={"source": "loans"})  # as it arrives from loans' log
        [certificates] = [
            r.projection for r in rt.runners if r.projection.name == "erasure-certificates"
        ]
        for _ in range(2):  # a redelivery changes nothing
            async with rt.engine.begin() as conn:
                await certificates.apply(conn, ended)
        cert = await service.certificate(rt, request.request_id)
        assert [(h.service, h.hold, h.status) for h in cert.retention] == [
            ("loans", "reg-b-applications", "erased")
        ]
        assert cert.retention[0].erased_at == ended.occurred_at
    finally:
        await rt.close()


async def _pending_exported(rt: ServiceRuntime) -> float:
    """`expensura_erasures_pending`, scraped from identity's internal listener."""
    app = create_app(service_definition)
    app.state.runtime = rt  # what the lifespan would set (not run here)
    transport = httpx.ASGITransport(app=only_on(Listener.INTERNAL, app))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    (value,) = [
        s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
        if s.name == "expensura_erasures_pending"
    ]
    return value


async def test_an_erasure_is_pending_from_its_request_until_its_certificate(
    provisioned: LocalStack,
) -> None:
    rt = runtime(provisioned, cooling_off_seconds=0, erasure_max_attempts=1)
    try:
        before = await _pending_exported(rt)
        subject = await _subject(rt)
        request = await service.cancel_account(rt, subject)
        stopped = await service.stop_processing(rt, request)
        assert stopped is not None
        assert await _pending_exported(rt) == before  # not yet asked of the stores
        await service.request_erasure(rt, stopped)
        assert await _pending_exported(rt) == before + 1
        async with rt.engine.connect() as conn:
            erasing = await store.latest(conn, subject)
        assert erasing is not None
        for name in ERASURE_PARTICIPANTS[:-1]:
            await _confirm(rt, subject, request.request_id, name)
        await service.chase_stores(rt, erasing)  # escalated: still pending
        assert await _state(rt, request.request_id) is CancellationState.ESCALATED
        assert await _pending_exported(rt) == before + 1
        await _confirm(rt, subject, request.request_id, ERASURE_PARTICIPANTS[-1])
        assert await _state(rt, request.request_id) is CancellationState.CERTIFIED
        assert await _pending_exported(rt) == before
    finally:
        await rt.close()
