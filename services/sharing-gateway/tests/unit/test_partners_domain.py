"""The partner registry's rules without I/O: agreement terms and states, credential states
and transitions, scopes (no sale or rent), four eyes on partners, agreements and
credentials."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from expensura_events.catalog.sharing import (
    ConfidentialityAgreementApproved,
    ConfidentialityAgreementSigned,
    PartnerCredentialApproved,
    PartnerCredentialIssued,
    PartnerCredentialRejected,
    PartnerRegistered,
    PartnerRegistrationApproved,
)
from expensura_events.four_eyes import AlreadyDecided, Approval, Approver, NotAnApprover, Verdict
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_sharing_gateway.partners.domain import (
    AGREEMENT_TRANSITIONS,
    APPROVAL_TRANSITIONS,
    CREDENTIAL_TRANSITIONS,
    Agreement,
    AgreementState,
    AgreementTerms,
    Credential,
    CredentialAction,
    CredentialState,
    IllegalTransition,
    InvalidAgreement,
    InvalidApproval,
    InvalidScopes,
    PartnerKind,
    PartnerRecord,
    categories_of,
    check_scopes,
    credential_transition,
    decide_agreement,
    decide_credential,
    decide_partner,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def terms(**kw: object) -> AgreementTerms:
    base: dict[str, object] = {
        "reference": "NDA-1",
        "purposes": (Purpose.CREDIT_ASSESSMENT,),
        "fields": ["phone"],
        "inbound": False,
        "starts_at": NOW,
        "ends_at": NOW + DAY,
    }
    return AgreementTerms(**(base | kw))  # type: ignore[arg-type]


def test_an_agreements_term_ends_after_it_starts_and_covers_known_fields_only() -> None:
    with pytest.raises(InvalidAgreement, match="ends_at"):
        terms(ends_at=NOW)
    with pytest.raises(InvalidAgreement, match="unknown fields: nationality"):
        terms(fields=["phone", "nationality"])
    assert terms(fields=["phone", "email", "phone"]).fields == ["email", "phone"]


@pytest.mark.obligation("SHR-3")
def test_an_agreement_is_in_force_only_within_its_term_and_time_moves_it_by_the_table() -> None:
    a = Agreement(
        "a", "NDA", frozenset({Purpose.CREDIT_ASSESSMENT}), frozenset(), False, NOW, NOW + DAY
    )
    moments = [NOW - DAY, NOW, NOW + DAY / 2, NOW + DAY, NOW + 2 * DAY]
    states = [a.state(t) for t in moments]
    assert states == [
        AgreementState.SIGNED,
        AgreementState.IN_FORCE,
        AgreementState.IN_FORCE,
        AgreementState.ENDED,
        AgreementState.ENDED,
    ]
    assert [a.active(t) for t in moments] == [False, True, True, False, False]
    # every change of state over time is one the table declares
    reachable = {(s, to) for (s, _), to in AGREEMENT_TRANSITIONS.items()}
    for before, after in itertools.pairwise(states):
        assert before == after or (before, after) in reachable
    assert a.covers(Purpose.CREDIT_ASSESSMENT, NOW)
    assert not a.covers(Purpose.COMMUNICATION, NOW)
    assert not a.covers(Purpose.CREDIT_ASSESSMENT, NOW, inbound=True)


def test_a_credential_is_active_until_it_expires_or_is_revoked() -> None:
    c = Credential("c-1", "p-1", ("credit-assessment",), NOW + DAY)
    assert c.state(NOW) is CredentialState.ACTIVE
    assert c.state(NOW + DAY) is CredentialState.EXPIRED  # expiry is exclusive
    revoked = Credential("c-1", "p-1", ("credit-assessment",), NOW + DAY, revoked_at=NOW)
    assert revoked.state(NOW) is CredentialState.REVOKED
    assert revoked.state(NOW + 2 * DAY) is CredentialState.REVOKED


def test_credential_transitions_are_the_declared_ones() -> None:
    for state in CredentialState:
        for action in CredentialAction:
            if (state, action) in CREDENTIAL_TRANSITIONS:
                assert (
                    credential_transition(state, action) is CREDENTIAL_TRANSITIONS[(state, action)]
                )
            else:
                with pytest.raises(IllegalTransition):
                    credential_transition(state, action)
    assert credential_transition(CredentialState.ACTIVE, CredentialAction.REVOKE) is (
        CredentialState.REVOKED
    )
    with pytest.raises(IllegalTransition):
        credential_transition(CredentialState.REVOKED, CredentialAction.REVOKE)


@pytest.mark.obligation("SHR-4")
def test_scopes_are_purposes_or_inbound_and_there_is_no_sale_or_rent() -> None:
    assert check_scopes(["inbound", "credit-assessment", "inbound"]) == [
        "credit-assessment",
        "inbound",
    ]
    for bad in ("sale", "rent", "data-sale"):
        with pytest.raises(InvalidScopes, match=bad):
            check_scopes(["credit-assessment", bad])
    assert not {"sale", "rent"} & {p.value for p in Purpose}


def test_fields_map_to_their_categories_once() -> None:
    assert categories_of(["email", "phone"]) == ["pd:Contact"]


# --- four eyes ----------------------------------------------------------------------------

SECOND = Approver(ActorKind.STAFF, "officer-2", frozenset({"privacy-officer"}), True)
ALONE = [
    Approver(ActorKind.STAFF, "officer-1", frozenset({"privacy-officer"}), True),  # the asker
    Approver(ActorKind.STAFF, "admin-1", frozenset({"administrator"}), True),
    Approver(ActorKind.STAFF, "officer-2", frozenset({"privacy-officer"}), False),
]
AGREEMENT = Agreement(
    str(uuid.uuid4()),
    "NDA",
    frozenset({Purpose.CREDIT_ASSESSMENT}),
    frozenset({"phone"}),
    False,
    NOW - DAY,
    NOW + DAY,
    approval=Approval.PENDING,
    requested_by="staff:officer-1",
)
CREDENTIAL = Credential(
    "c-1", "p-1", ("credit-assessment",), NOW + DAY, None, Approval.PENDING, "staff:officer-1"
)
PARTNER = PartnerRecord(
    "p-1", PartnerKind.CREDIT_BUREAU, "Bureau", Approval.PENDING, "staff:officer-1"
)


def test_approvals_follow_the_shared_table() -> None:
    assert dict(APPROVAL_TRANSITIONS) == {
        (Approval.PENDING, Verdict.APPROVE): Approval.APPROVED,
        (Approval.PENDING, Verdict.REJECT): Approval.REJECTED,
    }


@pytest.mark.obligation("SEC-2", "SHR-3")
def test_a_pending_partner_agreement_or_credential_has_no_effect() -> None:
    assert not PARTNER.registered
    assert AGREEMENT.state(NOW) is AgreementState.PENDING
    assert not AGREEMENT.covers(Purpose.CREDIT_ASSESSMENT, NOW)
    assert CREDENTIAL.state(NOW) is CredentialState.PENDING
    rejected = replace(AGREEMENT, approval=Approval.REJECTED)
    assert rejected.state(NOW) is AgreementState.REJECTED and not rejected.active(NOW)
    assert replace(CREDENTIAL, approval=Approval.REJECTED).state(NOW) is CredentialState.REJECTED
    approved = replace(AGREEMENT, approval=Approval.APPROVED)
    assert approved.covers(Purpose.CREDIT_ASSESSMENT, NOW)
    assert replace(CREDENTIAL, approval=Approval.APPROVED).state(NOW) is CredentialState.ACTIVE
    assert replace(PARTNER, approval=Approval.APPROVED).registered
    assert replace(PARTNER, approval=Approval.NOT_REQUIRED).registered  # from before


@pytest.mark.obligation("SEC-2")
def test_approved_each_takes_effect_with_its_own_event_after_the_approval() -> None:
    approval, events = decide_partner(PARTNER, SECOND, Verdict.APPROVE, "contract seen")
    assert approval is Approval.APPROVED
    assert [type(e) for e in events] == [PartnerRegistrationApproved, PartnerRegistered]
    approval, events = decide_agreement("p-1", AGREEMENT, SECOND, Verdict.APPROVE, "signed")
    assert [type(e) for e in events] == [
        ConfidentialityAgreementApproved,
        ConfidentialityAgreementSigned,
    ]
    approval, events = decide_credential(CREDENTIAL, SECOND, Verdict.REJECT, "not needed")
    assert approval is Approval.REJECTED
    assert [type(e) for e in events] == [PartnerCredentialRejected]
    _, events = decide_credential(CREDENTIAL, SECOND, Verdict.APPROVE, "needed")
    assert [type(e) for e in events] == [PartnerCredentialApproved, PartnerCredentialIssued]


@pytest.mark.obligation("SEC-2")
@pytest.mark.parametrize("who", ALONE)
def test_the_asker_an_administrator_or_an_officer_without_mfa_cannot_approve(
    who: Approver,
) -> None:
    with pytest.raises(NotAnApprover):
        decide_partner(PARTNER, who, Verdict.APPROVE, "fine")
    with pytest.raises(NotAnApprover):
        decide_agreement("p-1", AGREEMENT, who, Verdict.APPROVE, "fine")
    with pytest.raises(NotAnApprover):
        decide_credential(CREDENTIAL, who, Verdict.APPROVE, "fine")
    with pytest.raises(NotAnApprover):  # even withdrawn, a stranger learns nothing more
        decide_credential(replace(CREDENTIAL, revoked_at=NOW), who, Verdict.APPROVE, "fine")


@pytest.mark.obligation("SEC-2")
def test_each_is_decided_once_and_with_a_reason() -> None:
    for state in (Approval.APPROVED, Approval.REJECTED, Approval.NOT_REQUIRED):
        with pytest.raises(AlreadyDecided):
            decide_partner(replace(PARTNER, approval=state), SECOND, Verdict.APPROVE, "again")
        with pytest.raises(AlreadyDecided):
            decide_agreement(
                "p-1", replace(AGREEMENT, approval=state), SECOND, Verdict.REJECT, "again"
            )
    with pytest.raises(AlreadyDecided):  # withdrawn before a decision
        decide_credential(replace(CREDENTIAL, revoked_at=NOW), SECOND, Verdict.APPROVE, "late")
    with pytest.raises(InvalidApproval):
        decide_partner(PARTNER, SECOND, Verdict.APPROVE, " ")
    assert credential_transition(CredentialState.PENDING, CredentialAction.REVOKE) is (
        CredentialState.REVOKED
    )
