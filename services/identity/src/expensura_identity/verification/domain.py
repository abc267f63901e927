"""Real-name verification rules: input checksums and the request's states. No framework."""

from __future__ import annotations

import re
from enum import StrEnum

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_ID18 = re.compile(r"^[0-9]{17}[0-9X]$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


class VerificationState(StrEnum):
    PENDING = "pending"  # kept and retried until the agency answers
    VERIFIED = "verified"
    MISMATCH = "mismatch"


class InvalidIdentityData(ValueError):
    pass


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


def check(id_number: str, bank_card: str, mobile: str) -> None:
    if not valid_id_number(id_number):
        raise InvalidIdentityData("id_number is not a valid 18-character identity number")
    if not valid_bank_card(bank_card):
        raise InvalidIdentityData("bank_card fails its checksum")
    if not _E164.match(mobile):
        raise InvalidIdentityData("mobile must be in E.164 form, e.g. +8613800138000")


def retry_delay(attempts: int, *, base: float) -> float:
    return float(min(base * 2 ** max(attempts - 1, 0), 60.0))
