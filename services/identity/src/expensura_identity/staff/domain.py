"""Staff access rules (SEC-2, SEC-3, USE-4). Pure: no framework, no database.

- Least privilege: each role may read customer data for some purposes only.
- An account locks after five wrong passwords or codes; an administrator unlocks it. An
  administrator can also disable and re-enable it.
- The second factor is a TOTP code (one step either side of now, and only a step later than
  the last one accepted: a code works once) or a single-use recovery code; recovery codes are
  kept only as hashes.
- A customer look-up first confirms the customer's identity from details they give.
- The customer sees who read their data as a stable pseudonym, never the staff id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import pyotp

from expensura_events.catalog.platform import PersonalDataAccessed
from expensura_events.contacts import Contact
from expensura_events.envelope import Actor, EventEnvelope
from expensura_events.obligations import enforces
from expensura_events.vocabulary import ActorKind, Purpose, StaffRole
from expensura_identity.accounts.domain import normalise_email

# Purposes for which a role may read a customer's personal data. Administrators manage staff
# and partners but read no customer data.
ROLE_PURPOSES: dict[StaffRole, frozenset[Purpose]] = {
    StaffRole.CUSTOMER_SERVICE: frozenset({Purpose.CUSTOMER_CARE}),
    StaffRole.RISK_ANALYST: frozenset({Purpose.CREDIT_ASSESSMENT, Purpose.SECURITY}),
    StaffRole.SECURITY_OFFICER: frozenset({Purpose.SECURITY}),
    StaffRole.PRIVACY_OFFICER: frozenset({Purpose.LEGAL_COMPLIANCE, Purpose.CUSTOMER_CARE}),
    StaffRole.ADMINISTRATOR: frozenset(),
}

MAX_FAILED_ATTEMPTS = 5
RECOVERY_CODES = 8
TOTP_WINDOW = 1  # accept the code of the previous and the next 30-second step (clock drift)
TOTP_STEP_SECONDS = 30
RECOVERY_CODE = r"^ *[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{8} *$"  # as issued: hex-hex
TOTP_ISSUER = "Expensura staff"


# --- errors ---------------------------------------------------------------------------------


class StaffEmailTaken(Exception):
    pass


class NoSuchStaff(Exception):
    pass


class AccountLocked(Exception):
    """Answered only to someone who proved the password (or holds a challenge)."""


class AccountDisabled(AccountLocked):
    """Disabled by an administrator: answered like a lock, to the same callers."""


class CannotChangeOwnAccount(Exception):
    """An administrator may not disable, demote or reset themselves (another one must)."""


class IllegalTransition(Exception):
    pass


class RoleMayNotUse(Exception):
    """None of the caller's roles may use personal data for the purpose (SEC-2)."""


class CustomerNotFound(Exception):
    pass


class IdentityNotConfirmed(Exception):
    """The details the customer gave do not match the account (USE-4): nothing is shown."""


# --- the account's lock: a state machine ------------------------------------------------------


class StaffState(StrEnum):
    ACTIVE = "active"
    LOCKED = "locked"
    DISABLED = "disabled"


class StaffAction(StrEnum):
    LOCK_OUT = "lock-out"  # the failure limit was reached
    UNLOCK = "unlock"  # an administrator; on an active account it only resets the count
    DISABLE = "disable"  # an administrator; every session is revoked
    ENABLE = "enable"  # an administrator; with a fresh count


STAFF_TRANSITIONS: Mapping[tuple[StaffState, StaffAction], StaffState] = {
    (StaffState.ACTIVE, StaffAction.LOCK_OUT): StaffState.LOCKED,
    (StaffState.LOCKED, StaffAction.UNLOCK): StaffState.ACTIVE,
    (StaffState.ACTIVE, StaffAction.UNLOCK): StaffState.ACTIVE,
    (StaffState.ACTIVE, StaffAction.DISABLE): StaffState.DISABLED,
    (StaffState.LOCKED, StaffAction.DISABLE): StaffState.DISABLED,
    (StaffState.DISABLED, StaffAction.ENABLE): StaffState.ACTIVE,
}


def state_of(locked: bool, disabled: bool) -> StaffState:
    if disabled:
        return StaffState.DISABLED
    return StaffState.LOCKED if locked else StaffState.ACTIVE


def transition(state: StaffState, action: StaffAction) -> StaffState:
    try:
        return STAFF_TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(f"a staff account that is {state} cannot {action}") from None


@enforces("SEC-2")
def locks_out(failed_attempts: int) -> bool:
    """The lock-out rule: this many consecutive wrong passwords or codes lock the account."""
    return failed_attempts >= MAX_FAILED_ATTEMPTS


# --- TOTP enrolment: a state machine ----------------------------------------------------------


class Enrolment(StrEnum):
    NONE = "none"  # password only: the session may enrol TOTP and nothing else
    STARTED = "started"  # a secret was issued, not yet confirmed with a code
    ENROLLED = "enrolled"


class EnrolmentAction(StrEnum):
    START = "start"  # again while started: a new secret replaces the unconfirmed one
    CONFIRM = "confirm"


def enrolment_of(enrolled: bool, has_secret: bool) -> Enrolment:
    if enrolled:
        return Enrolment.ENROLLED
    return Enrolment.STARTED if has_secret else Enrolment.NONE


ENROLMENT_TRANSITIONS: Mapping[tuple[Enrolment, EnrolmentAction], Enrolment] = {
    (Enrolment.NONE, EnrolmentAction.START): Enrolment.STARTED,
    (Enrolment.STARTED, EnrolmentAction.START): Enrolment.STARTED,
    (Enrolment.STARTED, EnrolmentAction.CONFIRM): Enrolment.ENROLLED,
}


def enrol(state: Enrolment, action: EnrolmentAction) -> Enrolment:
    try:
        return ENROLMENT_TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(f"TOTP enrolment that is {state} cannot {action}") from None


# --- the second factor --------------------------------------------------------------------------


def totp_step_of(secret: str, code: str, at: datetime | None = None) -> int | None:
    """The 30-second step (unix time // 30) whose code this is: the step at `at` (default
    now) or either neighbour; None if it is none of them."""
    totp = pyotp.TOTP(secret)
    now = int((at or datetime.now(UTC)).timestamp()) // TOTP_STEP_SECONDS
    matched = None
    for step in range(now - TOTP_WINDOW, now + TOTP_WINDOW + 1):  # all three: constant time
        if hmac.compare_digest(totp.at(step * TOTP_STEP_SECONDS), code):
            matched = step
    return matched


@enforces("SEC-2")
def step_usable(step: int, last_step: int | None) -> bool:
    """One-time means once: a step is accepted only if it is later than the last accepted
    one, so neither the same code nor an older one works again."""
    return last_step is None or step > last_step


def totp_matches(
    secret: str, code: str, at: datetime | None = None, last_step: int | None = None
) -> bool:
    """The code is of a step near `at` and later than the last one accepted."""
    step = totp_step_of(secret, code, at)
    return step is not None and step_usable(step, last_step)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, staff_id: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=staff_id, issuer_name=TOTP_ISSUER)


def new_recovery_codes() -> list[str]:
    """Eight single-use codes, shown once; only their hashes are kept."""
    return [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]


def hash_code(code: str) -> str:
    """A recovery code's stored form: spaces, the dash and case do not matter."""
    return hashlib.sha256(code.strip().replace("-", "").lower().encode()).hexdigest()


@dataclass(frozen=True)
class SecondFactor:
    method: str  # "otp" or "recovery": the SignedIn event's method after "pwd"
    remaining_codes: list[str]  # the recovery-code hashes still unused
    totp_step: int | None = None  # the step now used up (a TOTP code), to store


@enforces("SEC-2")
def check_second_factor(
    secret: str,
    stored_codes: Sequence[str],
    code: str | None,
    recovery_code: str | None,
    at: datetime | None = None,
    last_step: int | None = None,
) -> SecondFactor | None:
    """The proven second factor, or None. A TOTP code is tried first, and proves nothing if
    its step is not later than `last_step`; a recovery code is used up (removed from the
    stored hashes) by proving it."""
    if code is not None:
        step = totp_step_of(secret, code, at)
        if step is not None and step_usable(step, last_step):
            return SecondFactor("otp", list(stored_codes), step)
    if recovery_code is not None and (used := hash_code(recovery_code)) in stored_codes:
        return SecondFactor("recovery", [c for c in stored_codes if c != used])
    return None


def second_factor_refusal(secret: str, code: str | None, at: datetime | None = None) -> str:
    """Why a second step that proved nothing was refused (the event's reason): a right code
    of a step used already is a replay, anything else a wrong code."""
    if code is not None and totp_step_of(secret, code, at) is not None:
        return "code-reused"
    return "wrong-code"


# --- staff members ------------------------------------------------------------------------------


def new_staff_id() -> str:
    return f"staff-{uuid.uuid4().hex[:12]}"


def staff_stream(staff_id: str) -> str:
    """A staff member's account events (created, enrolled, locked, unlocked, sign-ins)."""
    return f"staff-{staff_id}"


def totp_key_context(staff_id: str) -> str:
    """What the wrapped TOTP secret is bound to: it unwraps for this staff member only."""
    return f"totp:{staff_id}"


@enforces("SEC-2")
def role_for(roles: Iterable[str], purpose: Purpose) -> StaffRole | None:
    """The role under which these roles may use personal data for the purpose, if any."""
    held = set(roles)
    for role in sorted(StaffRole):
        if role.value in held and purpose in ROLE_PURPOSES[role]:
            return role
    return None


@enforces("USE-4")
def customer_confirmed(contact: Contact, email: str, phone_last4: str) -> bool:
    """The customer's identity is confirmed by the e-mail and the phone's last four digits
    they give, against the account's current details (no phone: never confirmed)."""
    values = contact.as_values()
    return normalise_email(email) == values["email"] and (values["phone"] or "").endswith(
        phone_last4
    )


# --- what the customer sees of staff reads (SEC-3) ------------------------------------------------


def pseudonym(secret: bytes, staff_id: str) -> str:
    """What a customer sees instead of a staff id: stable per staff member, not reversible."""
    return "staff-" + hmac.new(secret, staff_id.encode(), hashlib.sha256).hexdigest()[:12]


def shown_as(secret: bytes, actor: Actor) -> str:
    if actor.kind is ActorKind.STAFF:
        return pseudonym(secret, actor.id)
    return "you" if actor.kind is ActorKind.USER else actor.id


@dataclass(frozen=True)
class AccessLogLine:
    at: datetime
    who: str
    kind: str
    role: str | None
    purpose: str
    case_reference: str | None
    fields: list[str]


@enforces("SEC-3")
def access_log(events: Iterable[EventEnvelope], secret: bytes) -> list[AccessLogLine]:
    """Who read the subject's data, when and why, from their events: staff as a pseudonym
    with their role, partners by name, the subject as "you"."""
    return [
        AccessLogLine(
            at=e.occurred_at,
            who=shown_as(secret, e.actor),
            kind=e.actor.kind.value,
            role=e.actor.role,
            purpose=e.purpose.value,
            case_reference=e.payload.case_reference,
            fields=e.payload.fields,
        )
        for e in events
        if isinstance(e.payload, PersonalDataAccessed)
    ]
