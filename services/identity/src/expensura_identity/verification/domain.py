"""Real-name verification rules (USE-1, COL-2): input checksums, the request's states, and
what the agency's answer means. Pure: no framework, no database.

    pending ──(agency verified)──▶ verified
       │  └──(agency down or slow: kept, retried with back-off)──▶ pending
       └──(agency refused or mismatched)──▶ mismatch
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from expensura_events.catalog.identity_verification import (
    RealNameVerificationFailed,
    RealNameVerified,
)
from expensura_events.obligations import enforces

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_ID18 = re.compile(r"^[0-9]{17}[0-9X]$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
MAX_RETRY_DELAY = 60.0


class VerificationState(StrEnum):
    PENDING = "pending"  # kept and retried until the agency answers
    VERIFIED = "verified"
    MISMATCH = "mismatch"


class VerificationAction(StrEnum):
    AGENCY_VERIFIED = "agency-verified"
    AGENCY_REFUSED = "agency-refused"  # a mismatch, or the agency rejected the request
    AGENCY_UNAVAILABLE = "agency-unavailable"  # down, slow or erroring: try again later


TRANSITIONS: Mapping[tuple[VerificationState, VerificationAction], VerificationState] = {
    (VerificationState.PENDING, VerificationAction.AGENCY_VERIFIED): VerificationState.VERIFIED,
    (VerificationState.PENDING, VerificationAction.AGENCY_REFUSED): VerificationState.MISMATCH,
    (VerificationState.PENDING, VerificationAction.AGENCY_UNAVAILABLE): VerificationState.PENDING,
}

# A subject with a request in these states may not submit another.
BLOCKS_NEW_REQUEST = frozenset({VerificationState.PENDING, VerificationState.VERIFIED})


class InvalidIdentityData(ValueError):
    pass


class IllegalTransition(Exception):
    pass


class AlreadyVerified(Exception):
    """Verified, or still pending: no second request."""

    def __init__(self, request_id: UUID) -> None:
        super().__init__(f"request {request_id} is verified or still pending")
        self.request_id = request_id


class NotSubmitted(Exception):
    pass


def transition(state: VerificationState, action: VerificationAction) -> VerificationState:
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(f"a verification that is {state} cannot take {action}") from None


def verification_stream(request_id: UUID) -> str:
    """One verification request: its submission and the agency's answer."""
    return f"verification-{request_id}"


def valid_id_number(value: str) -> bool:
    """An 18-character resident identity number with its ISO 7064 MOD 11-2 check digit."""
    if not _ID18.match(value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == value[17]


def valid_bank_card(value: str) -> bool:
    """12 to 19 digits passing the Luhn check."""
    if not value.isdigit() or not 12 <= len(value) <= 19:
        return False
    digits = [int(d) for d in reversed(value)]
    total = sum(
        d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits)
    )
    return total % 10 == 0


@enforces("COL-2", "USE-1")
def check(id_number: str, bank_card: str, mobile: str) -> None:
    """Malformed identity data is refused before anything is kept or sent."""
    if not valid_id_number(id_number):
        raise InvalidIdentityData("id_number is not a valid 18-character identity number")
    if not valid_bank_card(bank_card):
        raise InvalidIdentityData("bank_card fails its checksum")
    if not _E164.match(mobile):
        raise InvalidIdentityData("mobile must be in E.164 form, e.g. +8613800138000")


def retry_delay(attempts: int, *, base: float) -> float:
    """Exponential back-off after the n-th failed attempt, at most a minute."""
    return float(min(base * 2 ** max(attempts - 1, 0), MAX_RETRY_DELAY))


def agency_answer(
    request_id: UUID, outcome: str, raw: Mapping[str, Any]
) -> tuple[VerificationAction, RealNameVerified | RealNameVerificationFailed]:
    """What the agency's answer means, and the event that records it: `verified_claims`
    like OpenID Connect for Identity Assurance, or the failure with the agency's outcome."""
    if outcome == "verified":
        return VerificationAction.AGENCY_VERIFIED, RealNameVerified(
            request_id=request_id,
            trust_framework=raw["trust_framework"],
            verified_at=datetime.fromisoformat(raw["verified_at"]),
            verifier=raw["verifier"],
            transaction_id=raw["transaction_id"],
            evidence=json.dumps(raw["evidence"]),
        )
    return VerificationAction.AGENCY_REFUSED, RealNameVerificationFailed(
        request_id=request_id, reason=f"agency: {outcome}"
    )


def verified_claims(event: RealNameVerified) -> dict[str, Any]:
    """The subject's view of their verification (OIDC4IA `verified_claims.verification`)."""
    return {
        "verification": {
            "trust_framework": event.trust_framework,
            "time": event.verified_at.isoformat(),
            "verifier": event.verifier,
            "txn": event.transaction_id,
            "evidence": json.loads(event.evidence),
        }
    }
