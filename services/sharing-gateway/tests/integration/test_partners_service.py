"""The registry's use cases on the gateway's database: registration once, agreements and
credentials for known partners only, revocation recorded once, token and replay checks."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from datetime import timedelta

import pytest

from expensura_events.envelope import Actor, utcnow
from expensura_events.four_eyes import AlreadyDecided, Approver, NotAnApprover, Verdict
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_sharing_gateway.partner_auth import service as auth
from expensura_sharing_gateway.partner_auth.domain import (
    BadSignature,
    InvalidClient,
    Replayed,
    SignedRequest,
    sign,
)
from expensura_sharing_gateway.partners import service
from expensura_sharing_gateway.partners.domain import (
    AgreementTerms,
    InvalidScopes,
    NoSuchCredential,
    NoSuchPartner,
    PartnerExists,
    PartnerKind,
)

from .conftest import log_of

OFFICER = Actor(kind=ActorKind.STAFF, id="officer-1")
BODY = b'{"subject_id": "s-1", "purpose": "credit-assessment", "fields": ["phone"]}'


def _signed(
    token: auth.IssuedToken, nonce: str, body: bytes = BODY, *, sent: bytes | None = None
) -> SignedRequest:
    """A POST /v1/disclosures signed with the token's key over `body`, arriving with `sent`."""
    key = base64.urlsafe_b64decode(token.request_key + "=")
    headers = sign(key, "POST", "/v1/disclosures", "", body, nonce, int(time.time()))
    return SignedRequest(
        "POST",
        "/v1/disclosures",
        "",
        body if sent is None else sent,
        headers["content-digest"],
        headers["signature-input"],
        headers["signature"],
    )


PRIVACY = frozenset({"privacy-officer"})
SECOND = Approver(ActorKind.STAFF, "officer-2", PRIVACY, True)


async def _partner(rt: ServiceRuntime, *, approved: bool = True) -> str:
    partner_id = f"bureau-{uuid.uuid4().hex[:6]}"
    await service.register_partner(rt, partner_id, "Bureau", PartnerKind.CREDIT_BUREAU, OFFICER)
    if approved:
        await service.decide_partner_request(rt, partner_id, SECOND, Verdict.APPROVE, "seen")
    return partner_id


async def _credential(rt: ServiceRuntime, partner_id: str) -> service.IssuedCredential:
    issued = await service.issue_credential(rt, partner_id, ["credit-assessment"], 30, OFFICER)
    await service.decide_credential_request(
        rt, partner_id, issued.credential.client_id, SECOND, Verdict.APPROVE, "needed"
    )
    return issued


async def test_a_partner_is_registered_once(rt: ServiceRuntime) -> None:
    partner_id = await _partner(rt)
    with pytest.raises(PartnerExists):
        await service.register_partner(rt, partner_id, "Again", PartnerKind.LAW_FIRM, OFFICER)
    log = await log_of(rt, f"partner-{partner_id}")
    assert [e["event_type"] for e in log] == [
        "sharing.PartnerRegistrationRequested",
        "sharing.PartnerRegistrationApproved",
        "sharing.PartnerRegistered",
    ]
    assert log[0]["payload"]["kind"] == "credit-bureau"
    assert (log[1]["actor"]["id"], log[2]["actor"]["id"]) == ("officer-2", "officer-2")


@pytest.mark.obligation("SHR-3")
async def test_agreements_and_credentials_only_for_a_registered_partner(
    rt: ServiceRuntime,
) -> None:
    terms = AgreementTerms(
        "NDA-1", (Purpose.CREDIT_ASSESSMENT,), ["phone"], False, utcnow(), utcnow() + timedelta(1)
    )
    with pytest.raises(NoSuchPartner):
        await service.sign_agreement(rt, "nobody-here", terms, OFFICER)
    with pytest.raises(NoSuchPartner):
        await service.issue_credential(rt, "nobody-here", ["credit-assessment"], 30, OFFICER)
    partner_id = await _partner(rt)
    with pytest.raises(InvalidScopes):
        await service.issue_credential(rt, partner_id, ["sale"], 30, OFFICER)
    agreement_id = await service.sign_agreement(rt, partner_id, terms, OFFICER)
    log = await log_of(rt, f"partner-{partner_id}")
    assert log[-1]["event_type"] == "sharing.ConfidentialityAgreementRequested"
    await service.decide_agreement_request(
        rt, partner_id, agreement_id, SECOND, Verdict.APPROVE, "signed copy seen"
    )
    log = await log_of(rt, f"partner-{partner_id}")
    assert log[-1]["event_type"] == "sharing.ConfidentialityAgreementSigned"
    assert log[-1]["payload"]["agreement_id"] == str(agreement_id)


async def test_concurrent_revocations_record_one_and_tokens_stop_at_once(
    rt: ServiceRuntime,
) -> None:
    partner_id = await _partner(rt)
    issued = await _credential(rt, partner_id)
    client_id = issued.credential.client_id
    token = await auth.issue_token(rt, client_id, issued.client_secret, "")
    assert token.expires_in == 300 and token.scope == "credit-assessment"
    partner = await auth.authenticate(rt, token.access_token, _signed(token, "nonce-0123456789ab"))
    assert partner.partner_id == partner_id and partner.kind is PartnerKind.CREDIT_BUREAU
    with pytest.raises(Replayed):
        await auth.authenticate(rt, token.access_token, _signed(token, "nonce-0123456789ab"))
    # the key is the token's own: another token's key signs nothing for this one
    other = await auth.issue_token(rt, client_id, issued.client_secret, "")
    assert other.request_key != token.request_key
    with pytest.raises(BadSignature):
        await auth.authenticate(rt, token.access_token, _signed(other, "nonce-other-0123456"))
    tampered = _signed(token, "nonce-tampered-01234", sent=BODY.replace(b"s-1", b"s-2"))
    with pytest.raises(BadSignature):
        await auth.authenticate(rt, token.access_token, tampered)
    with pytest.raises(NoSuchCredential):
        await service.revoke_credential(rt, "someone-else", client_id, OFFICER)
    await asyncio.gather(
        *(service.revoke_credential(rt, partner_id, client_id, OFFICER) for _ in range(4))
    )
    await service.revoke_credential(rt, partner_id, client_id, OFFICER)
    revoked = [
        e
        for e in await log_of(rt, f"partner-{partner_id}")
        if e["event_type"] == "sharing.PartnerCredentialRevoked"
    ]
    assert len(revoked) == 1
    with pytest.raises(InvalidClient, match="revoked"):
        await auth.authenticate(rt, token.access_token, _signed(token, "nonce-fresh-0123456"))
    with pytest.raises(InvalidClient):
        await auth.issue_token(rt, client_id, issued.client_secret, "")


@pytest.mark.obligation("SEC-2")
async def test_one_officer_cannot_give_a_partner_a_working_credential_alone(
    rt: ServiceRuntime,
) -> None:
    """The attack: one officer registers a partner and issues it a credential, approving
    their own requests; an administrator tries too. No token comes of it."""
    partner_id = await _partner(rt, approved=False)
    issued = await service.issue_credential(rt, partner_id, ["credit-assessment"], 30, OFFICER)
    client_id, secret = issued.credential.client_id, issued.client_secret
    alone = [
        Approver(ActorKind.STAFF, OFFICER.id, PRIVACY, True),
        Approver(ActorKind.STAFF, "admin-1", frozenset({"administrator"}), True),
        Approver(ActorKind.STAFF, "officer-2", PRIVACY, False),
    ]
    for who in alone:
        with pytest.raises(NotAnApprover):
            await service.decide_partner_request(rt, partner_id, who, Verdict.APPROVE, "fine")
        with pytest.raises(NotAnApprover):
            await service.decide_credential_request(
                rt, partner_id, client_id, who, Verdict.APPROVE, "fine"
            )
    with pytest.raises(InvalidClient):  # both pending
        await auth.issue_token(rt, client_id, secret, "")
    await service.decide_credential_request(
        rt, partner_id, client_id, SECOND, Verdict.APPROVE, "needed"
    )
    with pytest.raises(InvalidClient):  # the partner itself is still pending
        await auth.issue_token(rt, client_id, secret, "")
    await service.decide_partner_request(rt, partner_id, SECOND, Verdict.APPROVE, "seen")
    assert (await auth.issue_token(rt, client_id, secret, "")).scope == "credit-assessment"
    with pytest.raises(AlreadyDecided):
        await service.decide_partner_request(rt, partner_id, SECOND, Verdict.REJECT, "late")
    decided = [
        e["event_type"]
        for e in await log_of(rt, f"partner-{partner_id}")
        if e["event_type"].endswith(("Approved", "Rejected"))
    ]
    assert decided == ["sharing.PartnerCredentialApproved", "sharing.PartnerRegistrationApproved"]


@pytest.mark.obligation("SEC-2")
async def test_a_rejected_or_withdrawn_credential_never_gets_a_token(rt: ServiceRuntime) -> None:
    partner_id = await _partner(rt)
    rejected = await service.issue_credential(rt, partner_id, ["credit-assessment"], 30, OFFICER)
    await service.decide_credential_request(
        rt, partner_id, rejected.credential.client_id, SECOND, Verdict.REJECT, "not needed"
    )
    withdrawn = await service.issue_credential(rt, partner_id, ["credit-assessment"], 30, OFFICER)
    await service.revoke_credential(rt, partner_id, withdrawn.credential.client_id, OFFICER)
    with pytest.raises(AlreadyDecided):
        await service.decide_credential_request(
            rt, partner_id, withdrawn.credential.client_id, SECOND, Verdict.APPROVE, "late"
        )
    await service.revoke_credential(rt, partner_id, rejected.credential.client_id, OFFICER)
    for issued in (rejected, withdrawn):
        with pytest.raises(InvalidClient):
            await auth.issue_token(rt, issued.credential.client_id, issued.client_secret, "")


@pytest.mark.obligation("SEC-2")
async def test_two_officers_deciding_at_once_decide_once(rt: ServiceRuntime) -> None:
    partner_id = await _partner(rt, approved=False)
    third = Approver(ActorKind.STAFF, "officer-3", PRIVACY, True)
    outcomes = await asyncio.gather(
        service.decide_partner_request(rt, partner_id, SECOND, Verdict.APPROVE, "seen"),
        service.decide_partner_request(rt, partner_id, third, Verdict.REJECT, "unknown firm"),
        return_exceptions=True,
    )
    assert sum(isinstance(o, AlreadyDecided) for o in outcomes) == 1, outcomes
