"""The partner registry's rules without I/O: agreement terms and states, credential states
and transitions, scopes (no sale or rent)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from expensura_events.vocabulary import Purpose
from expensura_sharing_gateway.partners.domain import (
    AGREEMENT_TRANSITIONS,
    CREDENTIAL_TRANSITIONS,
    Agreement,
    AgreementState,
    AgreementTerms,
    Credential,
    CredentialAction,
    CredentialState,
    IllegalTransition,
    InvalidAgreement,
    InvalidScopes,
    categories_of,
    check_scopes,
    credential_transition,
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
