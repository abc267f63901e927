"""Partner authentication's rules without I/O: secrets, the client check, scopes granted,
the replay window, the partner a token names, signed requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from expensura_events.four_eyes import Approval
from expensura_sharing_gateway.partner_auth.domain import (
    AUDIENCE,
    BAD_CLIENT,
    BadSignature,
    InvalidClient,
    SignedRequest,
    StaleRequest,
    check_client,
    check_fresh,
    content_digest,
    grant,
    hash_secret,
    partner_of,
    request_key,
    secret_matches,
    sign,
    token_claims,
    verify_request,
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
    assert claims["jti"] != token_claims(CRED, PartnerKind.CREDIT_BUREAU, [], NOW, 300)["jti"]
    partner = partner_of(claims)
    assert partner.partner_id == "bureau-1"
    assert partner.kind is PartnerKind.CREDIT_BUREAU
    assert partner.scopes == frozenset({"inbound"})
    assert partner.client_id == CRED.client_id  # what its disclosures name (SEC-4)


def test_a_request_outside_the_clock_skew_is_stale() -> None:
    check_fresh(1000, 1300.0, 300)
    check_fresh(1600, 1300.0, 300)
    with pytest.raises(StaleRequest, match="five minutes"):
        check_fresh(1000, 1300.5, 300)
    with pytest.raises(StaleRequest, match="60 seconds"):
        check_fresh(1000, 1061.0, 60)


KEY = request_key(b"r" * 32, "token-1")
BODY = b'{"subject_id":"s-1","purpose":"credit-assessment","fields":["phone"]}'
T = 1_800_000_000
NONCE = "nonce-0123456789abcdef"


def _request(
    method: str = "POST", path: str = "/v1/disclosures", query: str = "", body: bytes = BODY
) -> SignedRequest:
    """A request signed as a partner signs it (over the defaults), sent as given."""
    headers = sign(KEY, "POST", "/v1/disclosures", "", BODY, NONCE, T)
    return SignedRequest(
        method,
        path,
        query,
        body,
        headers["content-digest"],
        headers["signature-input"],
        headers["signature"],
    )


def test_a_request_signed_over_what_was_sent_proves_its_nonce_and_time() -> None:
    proof = verify_request(_request(), KEY, T + 10.0, 300)
    assert (proof.nonce, proof.created) == (NONCE, T)


def test_the_signature_base_is_rfc_9421s() -> None:
    """What a partner implements from the documentation: the RFC's lines, HMAC-SHA256."""
    sent = _request()
    params = sent.signature_input.removeprefix("sig1=")  # type: ignore[union-attr]
    base = (
        '"@method": POST\n"@path": /v1/disclosures\n"@query": ?\n'
        f'"content-digest": {content_digest(BODY)}\n"@signature-params": {params}'
    )
    assert params == (
        '("@method" "@path" "@query" "content-digest")'
        f';created={T};nonce="{NONCE}";alg="hmac-sha256"'
    )
    mac = base64.b64encode(hmac.digest(KEY, base.encode(), "sha256")).decode()
    assert sent.signature == f"sig1=:{mac}:"
    assert content_digest(b"") == (
        f"sha-256=:{base64.b64encode(hashlib.sha256(b'').digest()).decode()}:"
    )


@pytest.mark.parametrize(
    "sent",
    [
        _request(body=BODY.replace(b"s-1", b"s-2")),  # another subject
        _request(body=BODY + b" "),  # even a byte more
        _request(path="/v1/inbound"),
        _request(query="subject=s-2"),
        _request(method="PUT"),
    ],
    ids=["changed-body", "appended-body", "changed-path", "added-query", "changed-method"],
)
@pytest.mark.obligation("SEC-2")
def test_a_signed_request_sent_with_another_body_path_query_or_method_is_refused(
    sent: SignedRequest,
) -> None:
    with pytest.raises(BadSignature):
        verify_request(sent, KEY, T + 1.0, 300)


def test_a_captured_request_cannot_be_given_a_fresh_nonce_or_time() -> None:
    """The nonce the used-once check sees is the one signed: a replayer who swaps in an
    unused nonce, or a new time, breaks the signature."""
    sent = _request()
    assert sent.signature_input is not None
    for swapped in (
        sent.signature_input.replace(NONCE, "nonce-fresh-unused-0001"),
        sent.signature_input.replace(f"created={T}", f"created={T + 3600}"),
    ):
        with pytest.raises(BadSignature):
            verify_request(replace(sent, signature_input=swapped), KEY, T + 3600.0, 300)


def test_a_signature_from_another_tokens_key_is_refused() -> None:
    with pytest.raises(BadSignature, match="does not match"):
        verify_request(_request(), request_key(b"r" * 32, "token-2"), T + 1.0, 300)


def test_a_stale_signed_request_is_refused() -> None:
    with pytest.raises(StaleRequest):
        verify_request(_request(), KEY, T + 301.0, 300)
    with pytest.raises(StaleRequest):
        verify_request(_request(), KEY, T - 301.0, 300)


@pytest.mark.parametrize(
    "change",
    [
        {"signature": None},
        {"signature_input": None},
        {"content_digest": None},
        {"content_digest": content_digest(b"other")},
        {"signature": "sig2=:AAAA:"},
        {"signature": "sig1=:not base64!:"},
        {"signature_input": '("@method" "@path" "@query" "content-digest");created=1'},
        {"signature_input": f'sig1=("@method" "@path" "@query");created={T};nonce="{NONCE}"'},
        {
            "signature_input": 'sig1=("@method" "@path" "@query" "content-digest" "@method")'
            f';created={T};nonce="{NONCE}"'
        },
        {
            "signature_input": 'sig1=("@method" "@path" "@query" "content-digest")'
            f';created={T};nonce="short"'
        },
        {
            "signature_input": 'sig1=("@method" "@path" "@query" "content-digest")'
            f';created={T};nonce="{NONCE}";alg="hmac-sha512"'
        },
        {
            "signature_input": 'sig1=("@method" "@path" "@query" "content-digest")'
            f';created={T};nonce="{NONCE}";nonce="{NONCE}x"'
        },
        {
            "signature_input": 'sig1=("@method" "@path" "@query" "content-digest")'
            f';created={T};nonce="{NONCE}";expires=1'
        },
    ],
)
def test_an_unsigned_or_malformed_signature_is_refused(change: dict[str, str | None]) -> None:
    with pytest.raises(BadSignature):
        verify_request(replace(_request(), **change), KEY, T + 1.0, 300)  # type: ignore[arg-type]
