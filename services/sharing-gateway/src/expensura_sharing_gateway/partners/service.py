"""Use cases of the partner registry (SHR-3), for staff: request a registration, an
agreement or a credential, a second officer's approval or rejection of each (four eyes),
and revoking credentials. One transaction each, the row and its events together."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncConnection

from expensura_events.envelope import Actor, DomainEvent, utcnow
from expensura_events.four_eyes import AlreadyDecided, Approver, Verdict
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import Purpose
from expensura_sharing_gateway.partner_auth.domain import hash_secret
from expensura_sharing_gateway.partners import store
from expensura_sharing_gateway.partners.domain import (
    Agreement,
    AgreementTerms,
    Credential,
    CredentialAction,
    CredentialState,
    NoSuchAgreement,
    NoSuchCredential,
    NoSuchPartner,
    PartnerExists,
    PartnerKind,
    PartnerRecord,
    agreement_requested,
    check_scopes,
    credential_requested,
    credential_revoked,
    credential_transition,
    decide_agreement,
    decide_credential,
    decide_partner,
    partner_stream,
    registration_requested,
)


@dataclass(frozen=True)
class IssuedCredential:
    credential: Credential
    client_secret: str  # shown once, at issue; only its hash is kept


async def register_partner(
    rt: ServiceRuntime, partner_id: str, name: str, kind: PartnerKind, by: Actor
) -> None:
    """Request a registration: the partner is registered when a second officer approves."""
    async with rt.engine.begin() as conn:
        if not await store.add_partner(conn, partner_id, name, kind, utcnow(), by):
            raise PartnerExists(f"Partner {partner_id} exists.")
        await rt.append(
            conn,
            [
                rt.envelope(
                    registration_requested(partner_id, kind, name),
                    stream_id=partner_stream(partner_id),
                    subject_id=None,
                    actor=by,
                    purpose=Purpose.LEGAL_COMPLIANCE,
                )
            ],
            expected_version=0,
        )


async def _require_partner(rt: ServiceRuntime, partner_id: str) -> None:
    async with rt.engine.connect() as conn:
        if not await store.partner_exists(conn, partner_id):
            raise NoSuchPartner(f"No partner {partner_id}.")


async def sign_agreement(
    rt: ServiceRuntime, partner_id: str, terms: AgreementTerms, by: Actor
) -> UUID:
    """Request a confidentiality agreement (terms already checked when `terms` was built):
    it covers nothing until a second officer approves it."""
    await _require_partner(rt, partner_id)
    agreement_id = uuid4()
    async with rt.engine.begin() as conn:
        await store.add_agreement(conn, agreement_id, partner_id, terms, by)
        await rt.append(
            conn,
            [
                rt.envelope(
                    agreement_requested(agreement_id, partner_id, terms),
                    stream_id=partner_stream(partner_id),
                    subject_id=None,
                    actor=by,
                    purpose=Purpose.LEGAL_COMPLIANCE,
                )
            ],
        )
    return agreement_id


async def issue_credential(
    rt: ServiceRuntime, partner_id: str, scopes: list[str], valid_days: int, by: Actor
) -> IssuedCredential:
    """A client id and secret for the client-credentials grant, which get no token until a
    second officer approves the credential. Rotate by issuing a new one and revoking the
    old."""
    granted = check_scopes(scopes)
    await _require_partner(rt, partner_id)
    now = utcnow()
    credential = Credential(
        client_id=f"{partner_id}-{secrets.token_hex(6)}",
        partner_id=partner_id,
        scopes=tuple(granted),
        expires_at=now + timedelta(days=valid_days),
    )
    secret = secrets.token_urlsafe(32)
    async with rt.engine.begin() as conn:
        await store.add_credential(conn, credential, hash_secret(secret), now, by)
        await rt.append(
            conn,
            [
                rt.envelope(
                    credential_requested(credential),
                    stream_id=partner_stream(partner_id),
                    subject_id=None,
                    actor=by,
                    purpose=Purpose.SECURITY,
                )
            ],
        )
    return IssuedCredential(credential, secret)


async def revoke_credential(
    rt: ServiceRuntime, partner_id: str, client_id: str, by: Actor
) -> Credential:
    """Revoke at once (tokens already issued under it stop working too). Revoking a revoked
    credential changes nothing and records nothing."""
    async with rt.engine.begin() as conn:
        credential = await store.credential_of(conn, partner_id, client_id)
        if credential is None:
            raise NoSuchCredential(f"No credential {client_id} for {partner_id}.")
        await _revoke(rt, conn, credential, by)
    return credential


async def contain_credential(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    client_id: str,
    *,
    incident_id: UUID,
    by: Actor,
    causation_id: UUID,
) -> bool:
    """An incident's containment (SEC-4): revoke the credential a client id names, in the
    caller's transaction (the projection's, which applies each request once), the event
    naming the incident. True if it was revoked now. Raises NoSuchCredential: a target the
    gateway does not know is parked for an operator, not silently done."""
    credential = await store.credential_by_client_id(conn, client_id)
    if credential is None:
        raise NoSuchCredential(f"No credential {client_id}.")
    return await _revoke(
        rt, conn, credential, by, incident_id=incident_id, causation_id=causation_id
    )


async def _revoke(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    credential: Credential,
    by: Actor,
    *,
    incident_id: UUID | None = None,
    causation_id: UUID | None = None,
) -> bool:
    """The one revoke path: compare-and-set, then the event; nothing twice."""
    now = utcnow()
    state = credential.state(now)
    # a rejected credential never worked: nothing to revoke, nothing to record
    if state in (CredentialState.REVOKED, CredentialState.REJECTED):
        return False
    credential_transition(state, CredentialAction.REVOKE)
    if not await store.revoke_credential(conn, credential.client_id, now):
        return False
    await rt.append(
        conn,
        [
            rt.envelope(
                credential_revoked(credential, incident_id),
                stream_id=partner_stream(credential.partner_id),
                subject_id=None,
                actor=by,
                purpose=Purpose.SECURITY,
                causation_id=causation_id,
            )
        ],
    )
    return True


async def _record_decision(
    rt: ServiceRuntime,
    conn: AsyncConnection,
    partner_id: str,
    events: list[DomainEvent],
    by: Actor,
) -> None:
    await rt.append(
        conn,
        [
            rt.envelope(
                event,
                stream_id=partner_stream(partner_id),
                subject_id=None,
                actor=by,
                purpose=Purpose.LEGAL_COMPLIANCE,
            )
            for event in events
        ],
    )


def _officer(approver: Approver) -> Actor:
    return Actor(kind=approver.kind, id=approver.id)


async def decide_partner_request(
    rt: ServiceRuntime, partner_id: str, approver: Approver, verdict: Verdict, reason: str
) -> PartnerRecord:
    """A second officer approves (the partner is registered) or rejects a registration,
    once. Raises NoSuchPartner, NotAnApprover, AlreadyDecided or InvalidApproval."""
    async with rt.engine.begin() as conn:
        partner = await store.partner_of(conn, partner_id, for_update=True)
        if partner is None:
            raise NoSuchPartner(f"No partner {partner_id}.")
        approval, events = decide_partner(partner, approver, verdict, reason)
        if not await store.decide_partner(conn, partner_id, approval, _officer(approver), utcnow()):
            raise AlreadyDecided(f"partner {partner_id} was decided already")
        await _record_decision(rt, conn, partner_id, events, _officer(approver))
    return replace(partner, approval=approval)


async def decide_agreement_request(
    rt: ServiceRuntime,
    partner_id: str,
    agreement_id: UUID,
    approver: Approver,
    verdict: Verdict,
    reason: str,
) -> Agreement:
    """A second officer approves (the agreement is signed) or rejects an agreement, once.
    Raises NoSuchAgreement, NotAnApprover, AlreadyDecided or InvalidApproval."""
    async with rt.engine.begin() as conn:
        agreement = await store.agreement_of(conn, partner_id, agreement_id, for_update=True)
        if agreement is None:
            raise NoSuchAgreement(f"No agreement {agreement_id} with {partner_id}.")
        approval, events = decide_agreement(partner_id, agreement, approver, verdict, reason)
        if not await store.decide_agreement(
            conn, agreement_id, approval, _officer(approver), utcnow()
        ):
            raise AlreadyDecided(f"agreement {agreement_id} was decided already")
        await _record_decision(rt, conn, partner_id, events, _officer(approver))
    return replace(agreement, approval=approval)


async def decide_credential_request(
    rt: ServiceRuntime,
    partner_id: str,
    client_id: str,
    approver: Approver,
    verdict: Verdict,
    reason: str,
) -> Credential:
    """A second officer approves (the credential is issued) or rejects a credential, once.
    Raises NoSuchCredential, NotAnApprover, AlreadyDecided or InvalidApproval."""
    async with rt.engine.begin() as conn:
        credential = await store.credential_of(conn, partner_id, client_id, for_update=True)
        if credential is None:
            raise NoSuchCredential(f"No credential {client_id} for {partner_id}.")
        approval, events = decide_credential(credential, approver, verdict, reason)
        if not await store.decide_credential(
            conn, client_id, approval, _officer(approver), utcnow()
        ):
            raise AlreadyDecided(f"credential {client_id} was decided already")
        await _record_decision(rt, conn, partner_id, events, _officer(approver))
    return replace(credential, approval=approval)
