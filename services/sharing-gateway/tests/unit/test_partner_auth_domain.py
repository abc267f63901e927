"""Partner authentication's rules without I/O: secrets, the client check, scopes granted,
the replay window, the partner a token names."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from expensura_events.four_eyes import Approval
from expensura_sharing_gateway.partner_auth.domain import (
    AUDIENCE,
    BAD_CLIENT,
    InvalidClient,
    StaleRequest,
    check_client,
    check_fresh,
    grant,
    hash_secret,
    partner_of,
    secret_matches,
    token_claims,
)
from expensura_sharing_gateway.partners.domain import Credential, PartnerKind

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
CRED = Credential("bureau-1-ab", "bureau-1", ("credit-assessment", "inbound"), NOW + timedelta(1))


def test_a_secret_matches_only_its_own_hash() -> None:
    stored = hash_secret("s3cret-value-1")
    assert secret_matches(stored, "s3cret-value-1")
    assert not secret_matches(stored, "s3cret-value-2")
    assert not secret_matches("not a hash", "s3cret-value-1")


@pytest.mark.obligation("SEC-2")
def test_a_client_needs_its_secret_and_an_active_credential_and_learns_no_more() -> None:
    stored = hash_secret("s3cret-value-1")
    check_client(CRED, stored, "s3cret-value-1", NOW, registered=True)
    revoked = Credential(CRED.client_id, CRED.partner_id, CRED.scopes, CRED.expires_at, NOW)
    pending = replace(CRED, approval=Approval.PENDING)
    rejected = replace(CRED, approval=Approval.REJECTED)
    for credential, secret, at, registered in (
        (CRED, "wrong-secret-1", NOW, True),
        (CRED, "s3cret-value-1", CRED.expires_at, True),
        (revoked, "s3cret-value-1", NOW, True),
        (pending, "s3cret-value-1", NOW, True),  # four eyes: not yet approved
        (rejected, "s3cret-value-1", NOW, True),
        (CRED, "s3cret-value-1", NOW, False),  # the partner's registration not approved
    ):
        with pytest.raises(InvalidClient) as refused:
            check_client(credential, stored, secret, at, registered=registered)
        assert str(refused.value) == BAD_CLIENT  # the same answer for every failure


def test_a_token_carries_the_scopes_asked_within_the_grant() -> None:
    assert grant(CRED.scopes, "") == ["credit-assessment", "inbound"]
    assert grant(CRED.scopes, "inbound") == ["inbound"]
    with pytest.raises(InvalidClient, match="Scopes not granted: marketing"):
        grant(CRED.scopes, "inbound marketing")


def test_the_tokens_claims_name_the_partner_and_come_back_as_it() -> None:
    claims = token_claims(CRED, PartnerKind.CREDIT_BUREAU, ["inbound"], NOW, 300)
    assert claims["aud"] == claims["iss"] == AUDIENCE
    assert claims["exp"] - claims["iat"] == timedelta(seconds=300)
    partner = partner_of(claims)
    assert partner.partner_id == "bureau-1"
    assert partner.kind is PartnerKind.CREDIT_BUREAU
    assert partner.scopes == frozenset({"inbound"})


def test_a_request_outside_the_clock_skew_is_stale() -> None:
    check_fresh(1000, 1300.0, 300)
    check_fresh(1600, 1300.0, 300)
    with pytest.raises(StaleRequest, match="five minutes"):
        check_fresh(1000, 1300.5, 300)
    with pytest.raises(StaleRequest, match="60 seconds"):
        check_fresh(1000, 1061.0, 60)
