"""RUL-3's floor and TRF-1's evidence as the service layer applies them, on the gateway's
database: a caller that is not the HTTP edge cannot go below k or transfer without
evidence, and nothing is recorded when it tries."""

from __future__ import annotations

import uuid

import pytest

from expensura_events.envelope import Actor, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind
from expensura_sharing_gateway.disclosures import store as disclosure_store
from expensura_sharing_gateway.disclosures.domain import DisclosureRecord
from expensura_sharing_gateway.statistics import service as statistics
from expensura_sharing_gateway.statistics.domain import BelowFloor
from expensura_sharing_gateway.transfers import service as transfers
from expensura_sharing_gateway.transfers.domain import (
    MissingEvidence,
    SuccessorTransfer,
    TransferReason,
)

from .conftest import log_of

OFFICER = Actor(kind=ActorKind.STAFF, id="officer-1")


async def _disclosed(rt: ServiceRuntime, partner_id: str, subjects: int) -> None:
    async with rt.engine.begin() as conn:
        for _ in range(subjects):
            await disclosure_store.add(
                conn,
                rt.mapper.cipher,
                DisclosureRecord(
                    disclosure_id=uuid.uuid4(),
                    subject_id=f"s-{uuid.uuid4().hex[:8]}",
                    partner_id=partner_id,
                    purpose="credit-assessment",
                    fields=["phone"],
                    outcome="disclosed",
                    reason="consent in force",
                    ground="consent",
                    decision_id=uuid.uuid4(),
                    case_reference=None,
                    at=utcnow(),
                ),
            )


@pytest.mark.obligation("RUL-3")
async def test_no_release_below_the_floor_whoever_calls_and_small_cells_withheld(
    rt: ServiceRuntime,
) -> None:
    big, small = f"big-{uuid.uuid4().hex[:6]}", f"small-{uuid.uuid4().hex[:6]}"
    await _disclosed(rt, big, 12)
    await _disclosed(rt, small, 3)
    for k in (1, 5, 9):
        with pytest.raises(BelowFloor):
            await statistics.release_statistics(rt, "disclosures-by-purpose", k, OFFICER)
    assert await statistics.ledger(rt) == []
    assert await log_of(rt, "statistics-") == []
    made = await statistics.release_statistics(
        rt, "disclosures-by-partner-and-purpose", 10, OFFICER
    )
    cells = {key[0]: n for key, n in made.cells.items()}
    assert cells[big] == 12 and cells[small] is None
    [entry] = await statistics.ledger(rt)
    assert (entry["k"], entry["suppressed"], entry["requested_by"]) == (
        10,
        made.suppressed,
        "officer-1",
    )
    [event] = await log_of(rt, f"statistics-{made.release_id}")
    assert event["payload"]["suppressed"] == made.suppressed


@pytest.mark.obligation("TRF-1")
async def test_a_transfer_without_evidence_is_refused_and_not_recorded(rt: ServiceRuntime) -> None:
    before = len(await log_of(rt, "transfer-"))
    bare = SuccessorTransfer("Acme Lending Inc.", TransferReason.MERGER, None, False)
    with pytest.raises(MissingEvidence):
        await transfers.record_transfer(rt, bare, OFFICER)
    assert len(await log_of(rt, "transfer-")) == before
    bound = SuccessorTransfer("Acme", TransferReason.MERGER, "deed-2026-44 §7", False)
    recorded = await transfers.record_transfer(rt, bound, OFFICER)
    assert recorded.reconsent_required is False
    [event] = await log_of(rt, f"transfer-{recorded.transfer_id}")
    assert event["legal_basis"] == {"ground": "other-law", "reference": "deed-2026-44 §7"}
