"""The disclosure pipeline as a use case on the gateway's database, no HTTP: every refusal
committed with its event before it is raised, a disclosure's row and event together, the
consent service's answer obeyed, nothing recorded when a dependency is down, erasure, and
the proof of a withdrawal from the gateway's own log."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from expensura_events.catalog.loans_servicing import BalanceDisputeOpened, dispute_case_digest
from expensura_events.contracts.decisions import Basis, BasisKind, DecisionOut
from expensura_events.envelope import Actor, utcnow
from expensura_events.four_eyes import Approver, Verdict
from expensura_events.metrics import exposition
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, DataCategory, Purpose
from expensura_sharing_gateway.disclosures import clients, service
from expensura_sharing_gateway.disclosures.domain import (
    UNKNOWN_CASE,
    DependencyDown,
    DisclosureAsk,
    InboundOffer,
    OutOfScope,
    Refused,
)
from expensura_sharing_gateway.disclosures.projection import DisputeCases
from expensura_sharing_gateway.erasure import erase_gateway_state
from expensura_sharing_gateway.partner_auth.domain import Partner
from expensura_sharing_gateway.partners import service as partners
from expensura_sharing_gateway.partners.domain import AgreementTerms, PartnerKind
from expensura_sharing_gateway.tables import disclosures

from .conftest import log_of

OFFICER = Actor(kind=ActorKind.STAFF, id="officer-1")
SECOND = Approver(ActorKind.STAFF, "officer-2", frozenset({"privacy-officer"}), True)


class Consent:
    """Stands in for consent's and identity's answers (their HTTP is the e2e ring's)."""

    def __init__(self) -> None:
        self.allowed, self.down, self.asked = True, False, 0
        self.consent_id = uuid.uuid4()

    async def decide(
        self, urls: Any, subject_id: str, purpose: Purpose, *_: Any, **__: Any
    ) -> DecisionOut:
        self.asked += 1
        if self.down:
            raise DependencyDown("consent: down")
        return DecisionOut(
            decision_id=uuid.uuid4(),
            subject_id=subject_id,
            purpose=purpose,
            recipient="p",
            allowed=self.allowed,
            reason="consent in force" if self.allowed else "no consent",
            basis=Basis(kind=BasisKind.CONSENT, consent_id=self.consent_id)
            if self.allowed
            else Basis(kind=BasisKind.NONE),
            decided_at=utcnow(),
        )

    async def values(
        self, urls: Any, subject_id: str, fields: list[str], *_: Any, **__: Any
    ) -> dict[str, str | None]:
        return {f: f"{f}-of-{subject_id}" for f in fields}


@pytest.fixture
def consent(monkeypatch: pytest.MonkeyPatch) -> Consent:
    fake = Consent()
    monkeypatch.setattr(clients, "decide", fake.decide)
    monkeypatch.setattr(clients, "disclosable_values", fake.values)
    return fake


@pytest.fixture
async def bureau(rt: ServiceRuntime) -> AsyncIterator[Partner]:
    partner_id = f"bureau-{uuid.uuid4().hex[:6]}"
    await partners.register_partner(rt, partner_id, "B", PartnerKind.CREDIT_BUREAU, OFFICER)
    await partners.decide_partner_request(rt, partner_id, SECOND, Verdict.APPROVE, "seen")
    terms = AgreementTerms(
        "NDA-1",
        (Purpose.CREDIT_ASSESSMENT,),
        ["phone", "email"],
        True,
        utcnow() - timedelta(1),
        utcnow() + timedelta(365),
    )
    agreement_id = await partners.sign_agreement(rt, partner_id, terms, OFFICER)
    await partners.decide_agreement_request(
        rt, partner_id, agreement_id, SECOND, Verdict.APPROVE, "signed copy seen"
    )
    yield Partner(
        partner_id, PartnerKind.CREDIT_BUREAU, frozenset({"credit-assessment", "inbound"})
    )


@pytest.fixture
async def collector(rt: ServiceRuntime) -> AsyncIterator[Partner]:
    partner_id = f"collector-{uuid.uuid4().hex[:6]}"
    kind = PartnerKind.COLLECTION_AGENCY
    await partners.register_partner(rt, partner_id, "C", kind, OFFICER)
    await partners.decide_partner_request(rt, partner_id, SECOND, Verdict.APPROVE, "seen")
    terms = AgreementTerms(
        "NDA-C",
        (Purpose.DISPUTE_RESOLUTION,),
        ["phone", "email"],
        False,
        utcnow() - timedelta(1),
        utcnow() + timedelta(365),
    )
    agreement_id = await partners.sign_agreement(rt, partner_id, terms, OFFICER)
    await partners.decide_agreement_request(
        rt, partner_id, agreement_id, SECOND, Verdict.APPROVE, "signed copy seen"
    )
    yield Partner(partner_id, kind, frozenset({"dispute-resolution"}))


async def _rows(rt: ServiceRuntime, subject: str) -> list[Any]:
    async with rt.engine.connect() as conn:
        return list(
            await conn.execute(select(disclosures).where(disclosures.c.subject_id == subject))
        )


def _subject() -> str:
    return f"subject-{uuid.uuid4().hex[:8]}"


@pytest.mark.obligation("SHR-1", "SHR-2")
async def test_a_disclosure_commits_its_row_and_event_with_the_minimised_fields(
    rt: ServiceRuntime, bureau: Partner, consent: Consent
) -> None:
    subject = _subject()
    ask = DisclosureAsk(subject, Purpose.CREDIT_ASSESSMENT, ("phone", "email", "nationality"))
    made = await service.disclose(rt, bureau, ask)
    assert made.data == {"phone": f"phone-of-{subject}"}  # e-mail not on a bureau's list
    [row] = await _rows(rt, subject)
    assert (row.outcome, row.fields, row.ground) == ("disclosed", ["phone"], "consent")
    [event] = await log_of(rt, f"disclosure-{made.disclosure_id}")
    assert event["event_type"] == "sharing.DisclosureMade"
    assert event["payload"]["fields"] == ["phone"]
    assert (event["actor"]["kind"], event["actor"]["id"]) == ("partner", bureau.partner_id)
    assert event["legal_basis"]["reference"] == str(consent.consent_id)


@pytest.mark.obligation("SHR-3", "SEC-2")
async def test_an_agreement_pending_a_second_officer_covers_nothing(
    rt: ServiceRuntime, bureau: Partner, consent: Consent
) -> None:
    terms = AgreementTerms(
        "NDA-2",
        (Purpose.COMMUNICATION,),
        ["email"],
        False,
        utcnow() - timedelta(1),
        utcnow() + timedelta(365),
    )
    await partners.sign_agreement(rt, bureau.partner_id, terms, OFFICER)
    wide = Partner(bureau.partner_id, bureau.kind, frozenset({"communication"}))
    with pytest.raises(Refused, match="agreement"):
        await service.disclose(
            rt, wide, DisclosureAsk(_subject(), Purpose.COMMUNICATION, ("email",))
        )
    assert consent.asked == 0


@pytest.mark.obligation("SHR-1", "SHR-3", "USE-8")
async def test_each_refusal_is_committed_before_it_is_raised(
    rt: ServiceRuntime, bureau: Partner, consent: Consent
) -> None:
    subject = _subject()
    asks = [
        # no agreement covers the purpose (SHR-3)
        DisclosureAsk(subject, Purpose.COMMUNICATION, ("email",)),
        # a dispute without its case (USE-8)
        DisclosureAsk(subject, Purpose.DISPUTE_RESOLUTION, ("email",)),
        # nothing the bureau may get (SHR-2)
        DisclosureAsk(subject, Purpose.CREDIT_ASSESSMENT, ("email",)),
    ]
    wide = Partner(bureau.partner_id, bureau.kind, frozenset(p.value for p in Purpose))
    reasons = []
    for ask in asks:
        with pytest.raises(Refused) as refused:
            await service.disclose(rt, wide, ask)
        reasons.append(refused.value.reason)
    assert consent.asked == 0  # refused before consent was asked
    consent.allowed = False
    with pytest.raises(Refused) as no:
        await service.disclose(
            rt, bureau, DisclosureAsk(subject, Purpose.CREDIT_ASSESSMENT, ("phone",))
        )
    assert no.value.reason == "consent service: no consent"
    rows = await _rows(rt, subject)
    assert sorted(r.reason for r in rows) == sorted([*reasons, no.value.reason])
    assert all(r.outcome == "refused" for r in rows)
    assert [r.decision_id is not None for r in sorted(rows, key=lambda r: r.at)] == [
        False,
        False,
        False,
        True,
    ]
    for row in rows:
        [event] = await log_of(rt, f"disclosure-{row.disclosure_id}")
        assert event["event_type"] == "sharing.DisclosureRefused"
        assert event["purpose"] == "security"


async def test_out_of_scope_and_a_dependency_down_record_nothing(
    rt: ServiceRuntime, bureau: Partner, consent: Consent
) -> None:
    subject = _subject()
    with pytest.raises(OutOfScope):
        await service.disclose(rt, bureau, DisclosureAsk(subject, Purpose.MARKETING, ("email",)))
    consent.down = True
    with pytest.raises(DependencyDown):
        await service.disclose(
            rt, bureau, DisclosureAsk(subject, Purpose.CREDIT_ASSESSMENT, ("phone",))
        )
    assert await _rows(rt, subject) == []


@pytest.mark.obligation("COL-4")
async def test_inbound_data_is_refused_without_consent_and_accepted_with_it(
    rt: ServiceRuntime, bureau: Partner, consent: Consent
) -> None:
    subject = _subject()
    report = f"score-{uuid.uuid4().hex}: 712, no defaults"  # never a chance match in ids
    offer = InboundOffer(subject, Purpose.CREDIT_ASSESSMENT, DataCategory.CREDIT_RECORD, report)
    consent.allowed = False
    with pytest.raises(Refused, match="consent service"):
        await service.accept_inbound(rt, bureau, offer)
    consent.allowed = True
    await service.accept_inbound(rt, bureau, offer)
    no_scope = Partner(bureau.partner_id, bureau.kind, frozenset({"credit-assessment"}))
    with pytest.raises(OutOfScope):
        await service.accept_inbound(rt, no_scope, offer)
    log = await log_of(rt, f"inbound-{subject}")
    assert [e["event_type"] for e in log] == [
        "sharing.InboundDataRefused",
        "sharing.InboundDataAccepted",
    ]
    assert report not in str(log[1]["payload"])  # the value is sealed in the log


@pytest.mark.obligation("RGT-4")
async def test_the_withdrawal_proof_reads_the_gateways_own_log(
    rt: ServiceRuntime, bureau: Partner, consent: Consent, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = _subject()
    await service.disclose(
        rt, bureau, DisclosureAsk(subject, Purpose.CREDIT_ASSESSMENT, ("phone",))
    )
    withdrawn_at = utcnow()

    async def consent_log(url: str, service: str, caller: object) -> AsyncIterator[dict[str, Any]]:
        if service != "consent":  # identity released nothing here
            return
        yield {
            "event_type": "consent.ConsentWithdrawn",
            "subject_id": subject,
            "recorded_at": withdrawn_at.isoformat(),
            "payload": {"consent_id": str(consent.consent_id)},
        }

    monkeypatch.setattr(clients, "log_records", consent_log)
    proof = await service.prove_no_disclosure_after_withdrawal(rt, subject, str(consent.consent_id))
    assert proof.holds and len(proof.before) == 1 and proof.after == []
    # a disclosure decided after the withdrawal (a broken consent service) breaks the proof
    await service.disclose(
        rt, bureau, DisclosureAsk(subject, Purpose.CREDIT_ASSESSMENT, ("phone",))
    )
    proof = await service.prove_no_disclosure_after_withdrawal(rt, subject, str(consent.consent_id))
    assert not proof.holds and len(proof.after) == 1


async def test_erasure_removes_the_subjects_rows_and_keeps_the_log(
    rt: ServiceRuntime, bureau: Partner, consent: Consent
) -> None:
    subject = _subject()
    made = await service.disclose(
        rt, bureau, DisclosureAsk(subject, Purpose.CREDIT_ASSESSMENT, ("phone",))
    )
    async with rt.engine.begin() as conn:
        assert await erase_gateway_state(conn, subject) == {"disclosures": 1}
    assert await service.disclosures_of(rt, subject) == []
    assert len(await log_of(rt, f"disclosure-{made.disclosure_id}")) == 1
    async with rt.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(disclosures))).scalar_one() > 0


async def _dispute_opened(rt: ServiceRuntime, subject: str) -> str:
    """Loans' `BalanceDisputeOpened` for the subject, applied by the gateway's projection
    as its consumer would (twice: a redelivery changes nothing); the case reference."""
    case = f"LD-{uuid.uuid4().hex[:16].upper()}"
    event = BalanceDisputeOpened(
        loan_id=uuid.uuid4(),
        case_reference=case,
        case_digest=dispute_case_digest(case),
        reason="wrong",
    )
    envelope = rt.envelope(
        event,
        stream_id=f"loan-{event.loan_id}",
        subject_id=subject,
        actor=Actor(kind=ActorKind.USER, id=subject),
        purpose=Purpose.DISPUTE_RESOLUTION,
    )
    for _ in range(2):
        async with rt.engine.begin() as conn:
            await DisputeCases().apply(conn, envelope)
    return case


@pytest.mark.obligation("USE-8")
async def test_a_dispute_disclosure_goes_only_under_its_subjects_open_case(
    rt: ServiceRuntime, collector: Partner, consent: Consent
) -> None:
    """The attack: a collection agency naming a made-up case, or another customer's case,
    gets nothing, and each refusal is recorded; under the subject's own case it gets the
    fields its list allows."""
    owner, other = _subject(), _subject()
    case = await _dispute_opened(rt, owner)
    for subject, named in (
        (owner, "LD-0000000000000000"),  # made up
        (owner, "LOAN-77"),  # made up, in another form
        (other, case),  # the owner's case, for another customer
    ):
        with pytest.raises(Refused) as refused:
            await service.disclose(
                rt,
                collector,
                DisclosureAsk(subject, Purpose.DISPUTE_RESOLUTION, ("phone",), named),
            )
        assert refused.value.reason == UNKNOWN_CASE
        [event] = await log_of(rt, f"disclosure-{refused.value.disclosure_id}")
        assert event["event_type"] == "sharing.DisclosureRefused"
        assert event["payload"]["reason"] == UNKNOWN_CASE
    assert consent.asked == 0  # refused before consent was asked: nothing looked up
    assert [r.outcome for r in await _rows(rt, other)] == ["refused"]

    made = await service.disclose(
        rt, collector, DisclosureAsk(owner, Purpose.DISPUTE_RESOLUTION, ("phone",), case)
    )
    assert made.data == {"phone": f"phone-of-{owner}"}
    assert sorted(r.outcome for r in await _rows(rt, owner)) == ["disclosed", "refused", "refused"]


@pytest.mark.obligation("USE-8", "RGT-3")
async def test_an_erased_subjects_cases_are_forgotten(
    rt: ServiceRuntime, collector: Partner, consent: Consent
) -> None:
    owner = _subject()
    case = await _dispute_opened(rt, owner)
    async with rt.engine.begin() as conn:
        assert await DisputeCases().purge_subject(conn, owner) == {"dispute_cases": 1}
    with pytest.raises(Refused, match="not an open dispute"):
        await service.disclose(
            rt, collector, DisclosureAsk(owner, Purpose.DISPUTE_RESOLUTION, ("phone",), case)
        )


def _exported(name: str, partner: str) -> dict[str, float]:
    """The series of `name` for `partner`, by their other label (purpose or reason)."""
    text = exposition("sharing-gateway", []).decode()
    return {
        next(v for k, v in s.labels.items() if k != "partner"): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and s.labels.get("partner") == partner
    }


async def test_disclosures_and_refusals_are_counted_by_partner_purpose_and_reason_code(
    rt: ServiceRuntime, bureau: Partner, consent: Consent
) -> None:
    subject = _subject()
    await service.disclose(
        rt, bureau, DisclosureAsk(subject, Purpose.CREDIT_ASSESSMENT, ("phone",))
    )
    wide = Partner(bureau.partner_id, bureau.kind, frozenset(p.value for p in Purpose))
    for ask in (
        DisclosureAsk(subject, Purpose.COMMUNICATION, ("email",)),
        DisclosureAsk(subject, Purpose.DISPUTE_RESOLUTION, ("email",)),
        DisclosureAsk(subject, Purpose.CREDIT_ASSESSMENT, ("email",)),
    ):
        with pytest.raises(Refused):
            await service.disclose(rt, wide, ask)
    consent.allowed = False
    with pytest.raises(Refused):
        await service.disclose(
            rt, bureau, DisclosureAsk(subject, Purpose.CREDIT_ASSESSMENT, ("phone",))
        )
    assert _exported("expensura_disclosures_total", bureau.partner_id) == {
        Purpose.CREDIT_ASSESSMENT.value: 1
    }
    assert _exported("expensura_disclosures_refused_total", bureau.partner_id) == {
        "no-agreement": 1,
        "no-case": 1,
        "no-fields": 1,
        "consent": 1,
    }
    assert subject not in exposition("sharing-gateway", []).decode()
