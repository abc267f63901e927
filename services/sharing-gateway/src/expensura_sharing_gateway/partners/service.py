"""Use cases of the partner registry (SHR-3), for staff: register, sign an agreement, issue
and revoke credentials. One transaction each, the row and its event together."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4

from expensura_events.envelope import Actor, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import Purpose
from expensura_sharing_gateway.partner_auth.domain import hash_secret
from expensura_sharing_gateway.partners import store
from expensura_sharing_gateway.partners.domain import (
    AgreementTerms,
    Credential,
    CredentialAction,
    CredentialState,
    NoSuchCredential,
    NoSuchPartner,
    PartnerExists,
    PartnerKind,
    agreement_signed,
    check_scopes,
    credential_issued,
    credential_revoked,
    credential_transition,
    partner_stream,
    registered,
)


@dataclass(frozen=True)
class IssuedCredential:
    credential: Credential
    client_secret: str  # shown once, at issue; only its hash is kept


async def register_partner(
    rt: ServiceRuntime, partner_id: str, name: str, kind: PartnerKind, by: Actor
) -> None:
    async with rt.engine.begin() as conn:
        if not await store.add_partner(conn, partner_id, name, kind, utcnow()):
            raise PartnerExists(f"Partner {partner_id} exists.")
        await rt.append(
            conn,
            [
                rt.envelope(
                    registered(partner_id, kind, name),
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
    """Record a confidentiality agreement (terms already checked when `terms` was built)."""
    await _require_partner(rt, partner_id)
    agreement_id = uuid4()
    async with rt.engine.begin() as conn:
        await store.add_agreement(conn, agreement_id, partner_id, terms)
        await rt.append(
            conn,
            [
                rt.envelope(
                    agreement_signed(agreement_id, partner_id, terms),
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
    """A client id and secret for the client-credentials grant. Rotate by issuing a new one
    and revoking the old."""
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
        await store.add_credential(conn, credential, hash_secret(secret), now)
        await rt.append(
            conn,
            [
                rt.envelope(
                    credential_issued(credential),
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
        now = utcnow()
        state = credential.state(now)
        if state is not CredentialState.REVOKED:
            credential_transition(state, CredentialAction.REVOKE)
            if await store.revoke_credential(conn, client_id, now):
                await rt.append(
                    conn,
                    [
                        rt.envelope(
                            credential_revoked(credential),
                            stream_id=partner_stream(partner_id),
                            subject_id=None,
                            actor=by,
                            purpose=Purpose.SECURITY,
                        )
                    ],
                )
    return credential
