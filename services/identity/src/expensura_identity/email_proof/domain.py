"""Proving that an account holder receives mail at the account's e-mail: a one-time code,
mailed there, presented back. Pure rules: no framework, no database, no clock of its own.

A code is six digits, good for `CODE_TTL`, for at most `MAX_ATTEMPTS` presentations, and
once. Identity keeps only its keyed hash (`code_hash`): a copy of the database does not
give the codes away, even though a million six-digit codes are quickly tried offline
against a plain hash. A new code replaces the last one, no sooner than `RESEND_AFTER`
(the mailbox may be someone else's: no flood of codes).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from expensura_events.catalog.identity import (
    EmailOwnershipProofRefused,
    EmailOwnershipProofRequested,
    EmailOwnershipProven,
)
from expensura_identity.accounts.domain import lookup_key

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=15)
MAX_ATTEMPTS = 5
RESEND_AFTER = timedelta(seconds=60)
METHOD = "one-time-code"


class CodeRefused(Exception):
    """The presented code proves nothing: wrong, expired, used, or its attempts spent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def event(self) -> EmailOwnershipProofRefused:
        return EmailOwnershipProofRefused(reason=self.reason)


class AlreadyProven(Exception):
    """The account's e-mail is proven: no new code is needed."""


class TooSoon(Exception):
    """A code was mailed moments ago; a new one only after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class IssuedCode:
    account_id: UUID
    code_hash: bytes
    issued_at: datetime
    expires_at: datetime
    attempts: int = 0
    used_at: datetime | None = None


def new_code() -> str:
    """Six digits from the operating system's CSPRNG (leading zeros kept)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(lookup_secret: bytes, account_id: UUID, code: str) -> bytes:
    """Keyed by identity's look-up secret and bound to the account: a code mailed to one
    account proves nothing for another."""
    return lookup_key(lookup_secret, "email-proof", f"{account_id}:{code.strip()}")


def issue(
    account_id: UUID,
    hashed: bytes,
    now: datetime,
    *,
    last: IssuedCode | None,
    proven: bool,
) -> tuple[IssuedCode, EmailOwnershipProofRequested]:
    """A new code for the account, replacing the last. Raises AlreadyProven, TooSoon."""
    if proven:
        raise AlreadyProven()
    if last is not None and last.used_at is None and now - last.issued_at < RESEND_AFTER:
        wait = RESEND_AFTER - (now - last.issued_at)
        raise TooSoon(max(1, int(wait.total_seconds() + 0.999)))
    issued = IssuedCode(account_id, hashed, issued_at=now, expires_at=now + CODE_TTL)
    return issued, EmailOwnershipProofRequested(expires_at=issued.expires_at)


def check(issued: IssuedCode | None, presented: bytes, now: datetime) -> EmailOwnershipProven:
    """The proof, if the presented code (its hash) is the live one. Raises CodeRefused;
    every refusal but "no code" counts as an attempt (`after_refusal`)."""
    if issued is None:
        raise CodeRefused("no code was issued")
    if issued.used_at is not None:
        raise CodeRefused("the code was already used")
    if now >= issued.expires_at:
        raise CodeRefused("the code expired")
    if issued.attempts >= MAX_ATTEMPTS:
        raise CodeRefused("too many attempts: ask for a new code")
    if not hmac.compare_digest(issued.code_hash, presented):
        raise CodeRefused("wrong code")
    return EmailOwnershipProven(method=METHOD)


def after_attempt(issued: IssuedCode, now: datetime, *, proven: bool) -> IssuedCode:
    """The code once presented: used up if it proved, else one attempt fewer left."""
    if proven:
        return replace(issued, attempts=issued.attempts + 1, used_at=now)
    return replace(issued, attempts=issued.attempts + 1)


def attempts_left(issued: IssuedCode) -> int:
    return max(0, MAX_ATTEMPTS - issued.attempts)
