"""The disclosure rules without I/O: the plan (case, agreement, minimisation), the decision
on consent's answer, inbound data, and the proof of a withdrawal."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from expensura_events.catalog.sharing import (
    DisclosureMade,
    DisclosureRefused,
    InboundDataAccepted,
    InboundDataRefused,
)
from expensura_events.contracts.decisions import Basis, BasisKind, DecisionOut
from expensura_events.vocabulary import CollectionChannel, DataCategory, LegalGround, Purpose
from expensura_sharing_gateway.disclosures.domain import (
    NO_CASE,
    UNKNOWN_CASE,
    DisclosureAsk,
    DisclosureRefusal,
    InboundOffer,
    OutOfScope,
    check_scope,
    covering_agreement,
    decide,
    decide_inbound,
    made_under,
    minimise,
    plan,
    prove_withdrawal,
    released_under,
    withdrawal_in,
)
from expensura_sharing_gateway.partner_auth.domain import Partner
from expensura_sharing_gateway.partners.domain import ALLOW_LISTS, Agreement, PartnerKind

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def agreement(
    purposes: set[Purpose] | None = None,
    fields: set[str] | None = None,
    *,
    inbound: bool = False,
    starts: datetime = NOW - DAY,
    ends: datetime = NOW + 365 * DAY,
) -> Agreement:
    return Agreement(
        str(uuid.uuid4()),
        "NDA-1",
        frozenset(purposes or {Purpose.CREDIT_ASSESSMENT}),
        frozenset(fields if fields is not None else {"email", "phone"}),
        inbound,
        starts,
        ends,
    )


def decision(allowed: bool, reason: str = "consent in force") -> DecisionOut:
    consent_id = uuid.uuid4()
    return DecisionOut(
        decision_id=uuid.uuid4(),
        subject_id="s-1",
        purpose=Purpose.CREDIT_ASSESSMENT,
        recipient="bureau-1",
        allowed=allowed,
        reason=reason,
        basis=Basis(kind=BasisKind.CONSENT, consent_id=consent_id)
        if allowed
        else Basis(kind=BasisKind.NONE),
        decided_at=NOW,
    )


@pytest.mark.obligation("SHR-2")
@pytest.mark.parametrize("kind", list(PartnerKind))
@pytest.mark.parametrize("purpose", list(Purpose))
def test_minimise_gives_asked_and_allow_list_and_agreement_and_nothing_else(
    kind: PartnerKind, purpose: Purpose
) -> None:
    asked = {"email", "phone", "nationality"}
    for agreed in ({"email"}, {"phone"}, {"email", "phone"}):
        expected = sorted(asked & ALLOW_LISTS[kind].get(purpose, frozenset()) & agreed)
        terms = agreement({purpose}, agreed)
        if expected:
            assert minimise(kind, purpose, terms, asked) == expected
        else:
            with pytest.raises(DisclosureRefusal, match="none of the requested fields"):
                minimise(kind, purpose, terms, asked)


@pytest.mark.obligation("SHR-2")
def test_a_bureau_asking_for_email_only_gets_a_refusal_not_an_empty_disclosure() -> None:
    with pytest.raises(DisclosureRefusal, match="credit-bureau for credit-assessment"):
        minimise(PartnerKind.CREDIT_BUREAU, Purpose.CREDIT_ASSESSMENT, agreement(), {"email"})


@pytest.mark.obligation("SHR-3")
def test_only_an_agreement_in_force_for_the_purpose_covers_a_request() -> None:
    ended = agreement(starts=NOW - 400 * DAY, ends=NOW - 35 * DAY)
    future = agreement(starts=NOW + DAY, ends=NOW + 30 * DAY)
    other_purpose = agreement({Purpose.COMMUNICATION})
    for agreements in ([], [ended], [future], [other_purpose]):
        with pytest.raises(DisclosureRefusal, match="no active confidentiality agreement"):
            covering_agreement(agreements, Purpose.CREDIT_ASSESSMENT, NOW)
    good = agreement()
    assert covering_agreement([ended, good], Purpose.CREDIT_ASSESSMENT, NOW) is good
    # the term's end is exclusive
    with pytest.raises(DisclosureRefusal):
        covering_agreement([agreement(ends=NOW)], Purpose.CREDIT_ASSESSMENT, NOW)


@pytest.mark.obligation("COL-4", "SHR-3")
def test_inbound_data_needs_an_agreement_that_covers_inbound() -> None:
    outbound_only = agreement()
    with pytest.raises(DisclosureRefusal, match="for inbound data"):
        covering_agreement([outbound_only], Purpose.CREDIT_ASSESSMENT, NOW, inbound=True)
    both = agreement(inbound=True)
    assert covering_agreement([both], Purpose.CREDIT_ASSESSMENT, NOW, inbound=True) is both


@pytest.mark.obligation("USE-8")
@pytest.mark.parametrize("purpose", [Purpose.DISPUTE_RESOLUTION, Purpose.LEGAL_COMPLIANCE])
def test_a_dispute_or_legal_request_without_its_case_is_refused_first(purpose: Purpose) -> None:
    ask = DisclosureAsk("s-1", purpose, ("email",), case_reference=None)
    # refused for the missing case even with no agreement at all: the case comes first
    with pytest.raises(DisclosureRefusal) as refused:
        plan(ask, PartnerKind.COURT, [], NOW)
    assert str(refused.value) == NO_CASE
    with_case = DisclosureAsk("s-1", purpose, ("email", "phone"), case_reference="LD-77")
    planned = plan(
        with_case,
        PartnerKind.COURT,
        [agreement({purpose}, {"email"})],
        NOW,
        case_subject="s-1",  # for a dispute: the subject's own open case
    )
    assert planned.fields == ["email"]


@pytest.mark.obligation("USE-8")
@pytest.mark.parametrize(
    ("kind", "case_subject"),
    [
        (PartnerKind.COLLECTION_AGENCY, None),  # a made-up case: no dispute by that reference
        (PartnerKind.COLLECTION_AGENCY, "s-2"),  # another customer's case
        (PartnerKind.LAW_FIRM, "s-2"),
        (PartnerKind.COURT, None),
    ],
)
def test_a_dispute_naming_a_case_not_opened_by_its_subject_gets_nothing(
    kind: PartnerKind, case_subject: str | None
) -> None:
    ask = DisclosureAsk("s-1", Purpose.DISPUTE_RESOLUTION, ("email",), case_reference="LD-77")
    agreements = [agreement({Purpose.DISPUTE_RESOLUTION})]
    with pytest.raises(DisclosureRefusal) as refused:
        plan(ask, kind, agreements, NOW, case_subject=case_subject)
    # one answer for both: the refusal does not tell whether the case exists
    assert str(refused.value) == UNKNOWN_CASE
    assert plan(ask, kind, agreements, NOW, case_subject="s-1").fields == ["email"]


@pytest.mark.obligation("USE-8")
def test_a_legal_compliance_case_need_not_be_a_dispute_the_subject_opened() -> None:
    ask = DisclosureAsk("s-1", Purpose.LEGAL_COMPLIANCE, ("email",), case_reference="ORDER-9")
    planned = plan(ask, PartnerKind.COURT, [agreement({Purpose.LEGAL_COMPLIANCE})], NOW)
    assert planned.fields == ["email"]


def test_the_plan_refuses_for_the_agreement_before_the_fields() -> None:
    ask = DisclosureAsk("s-1", Purpose.CREDIT_ASSESSMENT, ("email",))
    with pytest.raises(DisclosureRefusal, match="agreement"):
        plan(ask, PartnerKind.CREDIT_BUREAU, [], NOW)
    with pytest.raises(DisclosureRefusal, match="none of the requested fields"):
        plan(ask, PartnerKind.CREDIT_BUREAU, [agreement()], NOW)


def test_a_request_outside_the_tokens_scope_is_out_of_scope() -> None:
    partner = Partner("bureau-1", PartnerKind.CREDIT_BUREAU, frozenset({"credit-assessment"}))
    check_scope(partner, "credit-assessment")
    with pytest.raises(OutOfScope, match="marketing"):
        check_scope(partner, "marketing")


@pytest.mark.obligation("SHR-1")
def test_data_goes_only_on_consents_yes_and_a_no_is_a_refusal_naming_the_decision() -> None:
    ask = DisclosureAsk("s-1", Purpose.CREDIT_ASSESSMENT, ("phone", "email"))
    planned = plan(ask, PartnerKind.CREDIT_BUREAU, [agreement()], NOW)
    disclosure_id = uuid.uuid4()
    no = decision(False, "no consent")
    refused = decide(disclosure_id, "bureau-1", ask, planned, no)
    assert isinstance(refused, DisclosureRefused)
    assert refused.reason == "consent service: no consent"
    assert refused.decision_id == no.decision_id
    assert refused.fields == ["email", "phone"]  # what was asked, for the record
    yes = decision(True)
    made = decide(disclosure_id, "bureau-1", ask, planned, yes)
    assert isinstance(made, DisclosureMade)
    assert made.fields == ["phone"]  # what was planned, never what was asked
    assert made.decision_id == yes.decision_id
    assert made.basis["consent_id"] == str(yes.basis.consent_id)
    assert str(made.agreement_id) == planned.agreement.agreement_id
    assert made.client_id is None  # a caller that names no credential
    pulled = decide(disclosure_id, "bureau-1", ask, planned, yes, client_id="bureau-1-ab12")
    assert isinstance(pulled, DisclosureMade) and pulled.client_id == "bureau-1-ab12"


@pytest.mark.obligation("COL-4")
def test_inbound_data_is_accepted_only_with_an_agreement_and_consents_yes() -> None:
    offer = InboundOffer("s-1", Purpose.CREDIT_ASSESSMENT, DataCategory.CREDIT_RECORD, "712")
    inbound = agreement(inbound=True)
    no_agreement = decide_inbound("b-1", offer, None, None, "no active confidentiality")
    assert isinstance(no_agreement, InboundDataRefused)
    assert no_agreement.reason == "no active confidentiality"
    no_consent = decide_inbound("b-1", offer, inbound, decision(False, "no consent"))
    assert isinstance(no_consent, InboundDataRefused)
    assert no_consent.reason == "consent service: no consent"
    accepted = decide_inbound("b-1", offer, inbound, decision(True))
    assert isinstance(accepted, InboundDataAccepted)
    assert accepted.channel is CollectionChannel.FROM_PARTNER_WITH_CONSENT
    assert accepted.value == "712"


def _made(seq: int, subject: str, consent: str, decided_at: datetime) -> dict[str, object]:
    return {
        "sequence": seq,
        "event_type": "sharing.DisclosureMade",
        "subject_id": subject,
        "occurred_at": decided_at.isoformat(),
        "payload": {
            "partner_id": "bureau-1",
            "decided_at": decided_at.isoformat(),
            "decision_id": str(uuid.uuid4()),
            "fields": ["phone"],
            "basis": {"kind": "consent", "consent_id": consent},
        },
    }


@pytest.mark.obligation("RGT-4")
def test_the_proof_splits_disclosures_under_the_consent_at_its_withdrawal() -> None:
    consent = str(uuid.uuid4())
    withdrawn = {
        "event_type": "consent.ConsentWithdrawn",
        "subject_id": "s-1",
        "recorded_at": NOW.isoformat(),
        "payload": {"consent_id": consent},
    }
    assert withdrawal_in(withdrawn, "s-1", consent) == NOW
    assert withdrawal_in(withdrawn, "s-2", consent) is None
    assert withdrawal_in(withdrawn, "s-1", str(uuid.uuid4())) is None
    records = [
        _made(1, "s-1", consent, NOW - DAY),
        _made(2, "s-1", str(uuid.uuid4()), NOW + DAY),  # another consent
        _made(3, "s-2", consent, NOW + DAY),  # another subject
    ]
    made = [m for r in records if (m := made_under(r, "s-1", consent)) is not None]
    assert [m["sequence"] for m in made] == [1]
    proof = prove_withdrawal("s-1", consent, NOW, made)
    assert proof.holds and len(proof.before) == 1 and proof.after == []
    late = made_under(_made(4, "s-1", consent, NOW), "s-1", consent)
    assert late is not None
    broken = prove_withdrawal("s-1", consent, NOW, [*made, late])
    assert not broken.holds and [m["sequence"] for m in broken.after] == [4]  # at = after
    assert not prove_withdrawal("s-1", consent, None, made).holds  # no withdrawal: unproven


def _released(seq: int, consent: str, at: datetime, *, kind: str = "partner") -> dict[str, object]:
    """Identity's record of values it released (`platform.PersonalDataAccessed`)."""
    return {
        "sequence": seq,
        "event_type": "platform.PersonalDataAccessed",
        "subject_id": "s-1",
        "recorded_at": at.isoformat(),
        "actor": {"kind": kind, "id": "bureau-1"},
        "legal_basis": {"ground": "consent", "reference": consent},
        "payload": {"fields": ["email"], "case_reference": "decision:d-1"},
    }


@pytest.mark.obligation("RGT-4")
def test_a_release_of_values_after_the_withdrawal_breaks_the_proof_whoever_asked() -> None:
    """A release by identity counts even when the gateway recorded no disclosure: the path
    that bypassed the gateway cannot hide from the proof."""
    consent = str(uuid.uuid4())
    early = released_under(_released(7, consent, NOW - DAY), "s-1", consent)
    late = released_under(_released(9, consent, NOW + DAY), "s-1", consent)
    assert early is not None and late is not None
    assert (late["log"], late["partner"], late["decision_id"]) == ("identity", "bureau-1", "d-1")
    assert released_under(_released(8, str(uuid.uuid4()), NOW), "s-1", consent) is None
    assert released_under(_released(8, consent, NOW, kind="staff"), "s-1", consent) is None
    assert prove_withdrawal("s-1", consent, NOW, [early]).holds
    broken = prove_withdrawal("s-1", consent, NOW, [early, late])
    assert not broken.holds and [m["sequence"] for m in broken.after] == [9]


@pytest.mark.obligation("RGT-4")
def test_a_release_counts_from_when_consent_last_allowed_it() -> None:
    """Consent re-decides at redemption with the consent locked: a release it allowed before
    the withdrawal was recorded is before it, however late identity wrote its record; one
    it allowed after is after."""
    consent = str(uuid.uuid4())
    written_late = _released(5, consent, NOW + DAY)
    written_late["payload"] = {"fields": ["email"], "decided_at": (NOW - DAY).isoformat()}
    allowed_late = _released(6, consent, NOW + DAY)
    allowed_late["payload"] = {"fields": ["email"], "decided_at": NOW.isoformat()}
    before = released_under(written_late, "s-1", consent)
    after = released_under(allowed_late, "s-1", consent)
    assert before is not None and after is not None
    assert prove_withdrawal("s-1", consent, NOW, [before]).holds
    assert not prove_withdrawal("s-1", consent, NOW, [before, after]).holds


@pytest.mark.obligation("RGT-4")
def test_a_release_names_its_decision_though_the_case_reference_is_sealed() -> None:
    consent = str(uuid.uuid4())
    record = _released(3, consent, NOW)
    sealed = {"$enc": "A256GCM", "kid": "k", "iv": "aXY=", "ct": "Y3Q="}
    record["payload"] = {"fields": ["email"], "decision_id": "d-2", "case_reference": sealed}
    found = released_under(record, "s-1", consent)
    assert found is not None and found["decision_id"] == "d-2"


def test_a_legal_ground_decision_is_recorded_with_its_ground() -> None:
    ask = DisclosureAsk("s-1", Purpose.DISPUTE_RESOLUTION, ("phone",), case_reference="LOAN-77")
    planned = plan(
        ask,
        PartnerKind.COLLECTION_AGENCY,
        [agreement({Purpose.DISPUTE_RESOLUTION})],
        NOW,
        case_subject="s-1",
    )
    by_ground = decision(True).model_copy(
        update={
            "basis": Basis(
                kind=BasisKind.LEGAL_GROUND,
                invocation_id=uuid.uuid4(),
                ground=LegalGround.CONTRACT_AT_USERS_REQUEST,
                evidence_reference="loan-agreement-77/§12",
            )
        }
    )
    made = decide(uuid.uuid4(), "collector-1", ask, planned, by_ground)
    assert isinstance(made, DisclosureMade)
    assert made.case_reference == "LOAN-77"
    assert made.basis["ground"] == "contract-at-users-request"
