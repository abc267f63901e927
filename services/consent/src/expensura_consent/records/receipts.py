"""Signed consent receipts: ISO/IEC TS 27560 / Kantara v1.1 content in a JWS (EdDSA).

Anyone can verify a receipt with the public keys at /.well-known/consent-receipt-keys.json,
without asking us; `POST /v1/consent-receipts/verify` does the same for convenience.
"""

from __future__ import annotations

from typing import Any

import jwt

from expensura_consent.purposes import domain as taxonomy
from expensura_consent.records.domain import ConsentRecord
from expensura_events.envelope import utcnow
from expensura_events.signing import SigningKey

CONTROLLER = {"name": "Heewan Finance Limited", "role": "pii-controller"}
SCHEMA = "ISO/IEC TS 27560:2023; Kantara Consent Receipt v1.1"


def receipt_claims(row: ConsentRecord, history: list[dict[str, Any]]) -> dict[str, Any]:
    purpose = row.purpose
    version = taxonomy.version(purpose, row.purpose_version) or taxonomy.current(purpose)
    return {
        "schema_version": SCHEMA,
        "receipt_id": f"receipt-{row.consent_id}",
        "consent_id": str(row.consent_id),
        "iat": int(utcnow().timestamp()),
        "jurisdiction": "US",
        "pii_principal_id": row.subject_id,
        "pii_controllers": [CONTROLLER],
        "policy_version": row.policy_version,
        "collection_method": row.channel.value,
        "consent_status": row.status.value,
        "consent_timestamp": row.given_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "services": [
            {
                "service": "Expensura consumer loans",
                "purposes": [
                    {
                        "purpose": purpose.value,
                        "purpose_version": row.purpose_version,
                        "purpose_category": list(version.dpv),
                        "policy_reference": version.policy_ref,
                        "consent_type": "explicit",
                        "pii_category": sorted(row.categories),
                        "primary_purpose": purpose.info.policy_ref in ("USE-1", "USE-3"),
                        "termination": "until withdrawn"
                        + (f" or {row.expires_at.isoformat()}" if row.expires_at else ""),
                        "third_party_disclosure": bool(row.recipients),
                        "third_party_name": sorted(row.recipients),
                    }
                ],
            }
        ],
        "sensitive": any(
            c in ("pd:OfficialID", "pd:BankAccount", "pd:FacialPrint") for c in row.categories
        ),
        "events": history,
    }


def sign(claims: dict[str, Any], key: SigningKey) -> str:
    return jwt.encode(
        claims,
        key.private_key,
        algorithm="EdDSA",
        headers={"kid": key.kid, "typ": "consent-receipt+jwt"},
    )


def verify(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The receipt's claims if a published key signed it; raises jwt.PyJWTError otherwise."""
    keys = {k.key_id: k.key for k in jwt.PyJWKSet.from_dict(jwks).keys}
    kid = jwt.get_unverified_header(token).get("kid")
    if kid not in keys:
        raise jwt.InvalidSignatureError("receipt signed by an unknown key")
    claims: dict[str, Any] = jwt.decode(
        token, keys[kid], algorithms=["EdDSA"], options={"verify_aud": False}
    )
    return claims
