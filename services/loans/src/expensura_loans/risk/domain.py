"""Fraud and risk signals on loan applications (USE-6; USE-2's fraud detection). Pure rules,
no I/O.

The signals read what the loans service sees of an application (its device's and bank
card's hashes, its time), of device registrations and of changes to a loan's payout account.
Each signal reads only the fields `SIGNAL_INPUTS` declares for it and refuses any other
(minimisation, as the assessment's allow-list does for scoring). Devices and cards are known
by opaque hashes computed at the edge: the rules need only to tell two apart, never the
identifier itself. A signal's evidence holds counts, windows and loan ids: never a raw value,
nor another person's id (a device on many accounts says how many, not whose).

Any signal holds the application for a risk analyst's review; the analyst clears it or
confirms fraud, and that conclusion is final.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from expensura_events.catalog.loans_risk import (
    ApplicationHeldForReview,
    ReviewOutcome,
    RiskReviewConcluded,
    RiskSignalKind,
    RiskSignalRaised,
)
from expensura_events.obligations import enforces
from expensura_events.vocabulary import Purpose, StaffRole
from expensura_loans.assessment.domain import CREDITOR, ECOA_NOTICE

# --- thresholds -------------------------------------------------------------------------------

# A rolling 24 hours rather than the calendar day: a burst that straddles midnight is still
# one burst, and the day would depend on whose time zone counts.
VELOCITY_WINDOW = timedelta(hours=24)
# Three from one device: a household may share a phone (two partners, one retry after a
# correction); more in a day is the pattern of one device filing for many.
MAX_APPLICATIONS_PER_DEVICE = 3
# Two with one card: a card belongs to one person, who may retry once; a third application
# with the same card in a day is card testing or one card serving several identities.
MAX_APPLICATIONS_PER_CARD = 2
# Three by one person: a refused applicant may try other terms twice; beyond that they are
# shopping for the rules' edge, or someone else is applying in their name.
MAX_APPLICATIONS_PER_SUBJECT = 3

SHARED_DEVICE_WINDOW = timedelta(days=30)
# Three accounts on one device in 30 days: a family's shared tablet; more is a device that
# opens accounts for others (synthetic identities, money mules).
MAX_SUBJECTS_PER_DEVICE = 3

# A change of payout account is the last step of an account takeover. 72 hours: the owner is
# notified of every change, and three days lets them see it and object even over a weekend.
PAYOUT_ACCOUNT_COOLING_OFF = timedelta(hours=72)

_HOUR = timedelta(hours=1)

# 64 lowercase hex digits: a keyed SHA-256 (HMAC) digest as the edge computes it. A raw
# IDFA, IMEI or card number has another shape and is refused before any rule sees it.
_PSEUDONYM = re.compile(r"[0-9a-f]{64}")


class NotPseudonymous(ValueError):
    """A device id or card fingerprint that is not an opaque hash: possibly a raw identifier."""


def _pseudonym(value: str, what: str) -> None:
    if not _PSEUDONYM.fullmatch(value):
        raise NotPseudonymous(f"{what} must be a 64-hex-digit keyed hash, not a raw identifier")


def _aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("times must be timezone-aware")


def _subject(subject_id: str) -> None:
    if not subject_id:
        raise ValueError("a subject id is required")


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplicationSeen:
    """An application as the risk rules see it."""

    application_id: UUID
    subject_id: str
    device_id: str
    card_fingerprint: str
    at: datetime

    def __post_init__(self) -> None:
        _subject(self.subject_id)
        _pseudonym(self.device_id, "a device id")
        _pseudonym(self.card_fingerprint, "a card fingerprint")
        _aware(self.at)


@dataclass(frozen=True)
class DisbursementAccountChange:
    """The account a loan is to be paid out to was changed."""

    loan_id: UUID
    subject_id: str
    at: datetime

    def __post_init__(self) -> None:
        _subject(self.subject_id)
        _aware(self.at)


@dataclass(frozen=True)
class DeviceRegistration:
    device_id: str
    subject_id: str
    owner_verified: bool
    at: datetime

    def __post_init__(self) -> None:
        _pseudonym(self.device_id, "a device id")
        _subject(self.subject_id)
        _aware(self.at)


@dataclass(frozen=True)
class Disbursement:
    """A payout about to be made: what account changes are checked against."""

    loan_id: UUID
    subject_id: str
    at: datetime

    def __post_init__(self) -> None:
        _subject(self.subject_id)
        _aware(self.at)


Input = ApplicationSeen | DisbursementAccountChange | DeviceRegistration | Disbursement
# A rule's view of one input: the declared fields only, by name.
Record = Mapping[str, Any]

APPLICATION = "application"
ACCOUNT_CHANGE = "account_change"
REGISTRATION = "registration"
DISBURSEMENT = "disbursement"

SOURCES: Mapping[type[Input], str] = {
    ApplicationSeen: APPLICATION,
    DisbursementAccountChange: ACCOUNT_CHANGE,
    DeviceRegistration: REGISTRATION,
    Disbursement: DISBURSEMENT,
}

_K = RiskSignalKind

# USE-6: every field each signal reads, as `source.field`, and nothing else. Left out where a
# signal does not need them: the card fingerprint from every signal but the card's, the
# device from the subject's and the card's, whose the other applications on a device or card
# were (the count is enough), and who changed a payout account (the loan says whose it is).
SIGNAL_INPUTS: Mapping[RiskSignalKind, frozenset[str]] = {
    _K.DEVICE_VELOCITY: frozenset(
        {
            "application.application_id",
            "application.subject_id",
            "application.device_id",
            "application.at",
        }
    ),
    _K.CARD_VELOCITY: frozenset(
        {
            "application.application_id",
            "application.subject_id",
            "application.card_fingerprint",
            "application.at",
        }
    ),
    _K.SUBJECT_VELOCITY: frozenset(
        {"application.application_id", "application.subject_id", "application.at"}
    ),
    # Here whose matters, but only to count distinct people: the evidence keeps the count.
    _K.DEVICE_ON_MANY_ACCOUNTS: frozenset(
        {
            "application.subject_id",
            "application.device_id",
            "application.at",
            "registration.subject_id",
            "registration.device_id",
            "registration.at",
        }
    ),
    _K.PAYOUT_ACCOUNT_CHANGED: frozenset(
        {
            "disbursement.loan_id",
            "disbursement.subject_id",
            "disbursement.at",
            "account_change.loan_id",
            "account_change.at",
        }
    ),
    _K.UNVERIFIED_DEVICE_OWNER: frozenset(
        {
            "application.subject_id",
            "application.device_id",
            "application.at",
            "registration.device_id",
            "registration.owner_verified",
            "registration.at",
        }
    ),
}


class DisallowedInput(ValueError):
    """USE-6: a signal was given a field it may not read."""

    def __init__(self, kind: RiskSignalKind, paths: list[str]) -> None:
        super().__init__(f"not an input of {kind.value}: {', '.join(paths)}")
        self.kind = kind
        self.paths = paths


class MissingInput(ValueError):
    """A declared input is absent: the signal would rest on less than it reads."""


def _fields(kind: RiskSignalKind, source: str) -> frozenset[str]:
    prefix = f"{source}."
    return frozenset(p.removeprefix(prefix) for p in SIGNAL_INPUTS[kind] if p.startswith(prefix))


@enforces("USE-6")
def inputs_for(kind: RiskSignalKind, item: Input) -> dict[str, Any]:
    """What signal `kind` may read of one input, and nothing else."""
    return {name: getattr(item, name) for name in sorted(_fields(kind, SOURCES[type(item)]))}


def _checked(kind: RiskSignalKind, source: str, records: Iterable[Record]) -> list[Record]:
    allowed = _fields(kind, source)
    checked = list(records)
    disallowed = sorted({f"{source}.{k}" for r in checked for k in r if k not in allowed})
    if disallowed:
        raise DisallowedInput(kind, disallowed)
    missing = sorted({f"{source}.{f}" for r in checked for f in allowed - set(r)})
    if missing:
        raise MissingInput(f"missing inputs of {kind.value}: {', '.join(missing)}")
    return checked


# --- signals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskSignal:
    """One signal that fired. `evidence`: counts, windows and loan ids. The pseudonymous ids
    it names sit apart, so the event can seal each under its own category."""

    kind: RiskSignalKind
    subject_id: str
    evidence: Mapping[str, int | str]
    device_id: str | None = None
    card_fingerprint: str | None = None


def _within(now: datetime, then: datetime, window: timedelta) -> bool:
    """`then` lies in the window that ends at `now`: older events and later ones are out."""
    return now - window < then <= now


def _hours(window: timedelta) -> int:
    return window // _HOUR


def _velocity(
    kind: RiskSignalKind,
    application: Record,
    applications: Iterable[Record],
    key: str,
    limit: int,
) -> tuple[Record, int] | None:
    """The current application and how many (itself included) share its `key` in the
    velocity window, when that is more than `limit`."""
    current, *others = _checked(kind, APPLICATION, [application, *applications])
    ids = {current["application_id"]} | {
        a["application_id"]
        for a in others
        if a[key] == current[key] and _within(current["at"], a["at"], VELOCITY_WINDOW)
    }
    return (current, len(ids)) if len(ids) > limit else None


@enforces("USE-6")
def device_velocity(application: Record, applications: Iterable[Record]) -> RiskSignal | None:
    """More than `MAX_APPLICATIONS_PER_DEVICE` applications from one device in 24 hours."""
    kind = _K.DEVICE_VELOCITY
    fired = _velocity(kind, application, applications, "device_id", MAX_APPLICATIONS_PER_DEVICE)
    if fired is None:
        return None
    current, count = fired
    evidence = {"applications": count, "window_hours": _hours(VELOCITY_WINDOW)}
    return RiskSignal(kind, current["subject_id"], evidence, device_id=current["device_id"])


@enforces("USE-6")
def card_velocity(application: Record, applications: Iterable[Record]) -> RiskSignal | None:
    """More than `MAX_APPLICATIONS_PER_CARD` applications with one card in 24 hours."""
    kind = _K.CARD_VELOCITY
    fired = _velocity(
        kind, application, applications, "card_fingerprint", MAX_APPLICATIONS_PER_CARD
    )
    if fired is None:
        return None
    current, count = fired
    evidence = {"applications": count, "window_hours": _hours(VELOCITY_WINDOW)}
    return RiskSignal(
        kind, current["subject_id"], evidence, card_fingerprint=current["card_fingerprint"]
    )


@enforces("USE-6")
def subject_velocity(application: Record, applications: Iterable[Record]) -> RiskSignal | None:
    """More than `MAX_APPLICATIONS_PER_SUBJECT` applications by one person in 24 hours."""
    kind = _K.SUBJECT_VELOCITY
    fired = _velocity(kind, application, applications, "subject_id", MAX_APPLICATIONS_PER_SUBJECT)
    if fired is None:
        return None
    current, count = fired
    evidence = {"applications": count, "window_hours": _hours(VELOCITY_WINDOW)}
    return RiskSignal(kind, current["subject_id"], evidence)


@enforces("USE-6")
def device_on_many_accounts(
    application: Record, applications: Iterable[Record], registrations: Iterable[Record]
) -> RiskSignal | None:
    """The application's device was seen (applying or registered) on more than
    `MAX_SUBJECTS_PER_DEVICE` accounts in 30 days."""
    kind = _K.DEVICE_ON_MANY_ACCOUNTS
    current, *others = _checked(kind, APPLICATION, [application, *applications])
    seen = [*others, *_checked(kind, REGISTRATION, registrations)]
    subjects = {current["subject_id"]} | {
        r["subject_id"]
        for r in seen
        if r["device_id"] == current["device_id"]
        and _within(current["at"], r["at"], SHARED_DEVICE_WINDOW)
    }
    if len(subjects) <= MAX_SUBJECTS_PER_DEVICE:
        return None
    evidence = {"subjects": len(subjects), "window_days": SHARED_DEVICE_WINDOW.days}
    return RiskSignal(kind, current["subject_id"], evidence, device_id=current["device_id"])


@enforces("USE-6")
def payout_account_changed(
    disbursement: Record, account_changes: Iterable[Record]
) -> RiskSignal | None:
    """The loan's payout account changed less than `PAYOUT_ACCOUNT_COOLING_OFF` before the
    payout."""
    kind = _K.PAYOUT_ACCOUNT_CHANGED
    (payout,) = _checked(kind, DISBURSEMENT, [disbursement])
    recent = [
        c["at"]
        for c in _checked(kind, ACCOUNT_CHANGE, account_changes)
        if c["loan_id"] == payout["loan_id"]
        and _within(payout["at"], c["at"], PAYOUT_ACCOUNT_COOLING_OFF)
    ]
    if not recent:
        return None
    evidence: dict[str, int | str] = {
        "loan_id": str(payout["loan_id"]),
        "hours_before_payout": (payout["at"] - max(recent)) // _HOUR,
        "window_hours": _hours(PAYOUT_ACCOUNT_COOLING_OFF),
    }
    return RiskSignal(kind, payout["subject_id"], evidence)


@enforces("USE-6")
def unverified_device_owner(
    application: Record, registrations: Iterable[Record]
) -> RiskSignal | None:
    """The application comes from a registered device whose owner is not verified. The latest
    registration before the application says who owns it now; an unregistered device is not
    this signal's concern."""
    kind = _K.UNVERIFIED_DEVICE_OWNER
    (current,) = _checked(kind, APPLICATION, [application])
    of_device = [
        r
        for r in _checked(kind, REGISTRATION, registrations)
        if r["device_id"] == current["device_id"] and r["at"] <= current["at"]
    ]
    if not of_device or max(of_device, key=lambda r: r["at"])["owner_verified"] is True:
        return None
    evidence = {"registrations": len(of_device)}
    return RiskSignal(kind, current["subject_id"], evidence, device_id=current["device_id"])


@enforces("USE-6")
def signals_for(
    application: ApplicationSeen,
    *,
    applications: Iterable[ApplicationSeen] = (),
    registrations: Iterable[DeviceRegistration] = (),
) -> tuple[RiskSignal, ...]:
    """Every signal that fires on an application, given the applications and device
    registrations seen before it (the application itself may be among them)."""
    apps, regs = list(applications), list(registrations)

    def view(kind: RiskSignalKind, items: Iterable[Input]) -> list[dict[str, Any]]:
        return [inputs_for(kind, item) for item in items]

    def one(kind: RiskSignalKind) -> dict[str, Any]:
        return inputs_for(kind, application)

    found = [
        device_velocity(one(_K.DEVICE_VELOCITY), view(_K.DEVICE_VELOCITY, apps)),
        card_velocity(one(_K.CARD_VELOCITY), view(_K.CARD_VELOCITY, apps)),
        subject_velocity(one(_K.SUBJECT_VELOCITY), view(_K.SUBJECT_VELOCITY, apps)),
        device_on_many_accounts(
            one(_K.DEVICE_ON_MANY_ACCOUNTS),
            view(_K.DEVICE_ON_MANY_ACCOUNTS, apps),
            view(_K.DEVICE_ON_MANY_ACCOUNTS, regs),
        ),
        unverified_device_owner(
            one(_K.UNVERIFIED_DEVICE_OWNER), view(_K.UNVERIFIED_DEVICE_OWNER, regs)
        ),
    ]
    return tuple(s for s in found if s is not None)


@enforces("USE-6")
def signals_before_payout(
    disbursement: Disbursement, account_changes: Iterable[DisbursementAccountChange]
) -> tuple[RiskSignal, ...]:
    """Every signal that fires on a payout about to be made."""
    kind = _K.PAYOUT_ACCOUNT_CHANGED
    signal = payout_account_changed(
        inputs_for(kind, disbursement), [inputs_for(kind, c) for c in account_changes]
    )
    return () if signal is None else (signal,)


def signal_raised(application_id: UUID, signal: RiskSignal) -> RiskSignalRaised:
    return RiskSignalRaised(
        application_id=application_id,
        kind=signal.kind,
        evidence=dict(signal.evidence),
        device_id=signal.device_id,
        card_fingerprint=signal.card_fingerprint,
    )


# --- the review -------------------------------------------------------------------------------


class ReviewState(StrEnum):
    OPEN = "open"
    CLEARED = ReviewOutcome.CLEARED.value
    CONFIRMED_FRAUD = ReviewOutcome.CONFIRMED_FRAUD.value


# Open until a risk analyst concludes; a conclusion is final (a fraud later found on a
# cleared application is a new signal, and a new review).
REVIEW_TRANSITIONS: Mapping[ReviewState, frozenset[ReviewState]] = {
    ReviewState.OPEN: frozenset({ReviewState.CLEARED, ReviewState.CONFIRMED_FRAUD}),
    ReviewState.CLEARED: frozenset(),
    ReviewState.CONFIRMED_FRAUD: frozenset(),
}

REVIEWER_ROLE = StaffRole.RISK_ANALYST


class InvalidReviewTransition(ValueError):
    """A review may go only from open to cleared or confirmed fraud."""


class NotARiskAnalyst(PermissionError):
    """Only a risk analyst concludes a risk review."""


def needs_review(signals: Iterable[RiskSignal]) -> bool:
    """Any signal holds the application: no score or count outweighs one."""
    return any(True for _ in signals)


@dataclass(frozen=True)
class ReviewHold:
    """An application held for a risk analyst's review, and why."""

    application_id: UUID
    kinds: tuple[RiskSignalKind, ...]
    state: ReviewState = field(default=ReviewState.OPEN)

    def __post_init__(self) -> None:
        if not self.kinds:
            raise ValueError("a hold needs at least one signal")


@enforces("USE-6")
def hold_for(
    application_id: UUID, signals: Iterable[RiskSignal]
) -> tuple[ReviewHold, ApplicationHeldForReview] | None:
    """The hold, and its event, when any signal fired; None when none did."""
    fired = list(signals)
    if not needs_review(fired):
        return None
    kinds = tuple(dict.fromkeys(s.kind for s in fired))
    hold = ReviewHold(application_id, kinds)
    return hold, ApplicationHeldForReview(application_id=application_id, kinds=list(kinds))


def transition(state: ReviewState, to: ReviewState) -> ReviewState:
    if to not in REVIEW_TRANSITIONS[state]:
        raise InvalidReviewTransition(f"a review cannot go from {state.value} to {to.value}")
    return to


def conclude(
    hold: ReviewHold,
    outcome: ReviewOutcome,
    *,
    reviewer_staff_id: str,
    reviewer_role: StaffRole,
) -> tuple[ReviewHold, RiskReviewConcluded]:
    """A risk analyst's conclusion of an open review."""
    if reviewer_role is not REVIEWER_ROLE:
        raise NotARiskAnalyst(f"a {reviewer_role.value} cannot conclude a risk review")
    state = transition(hold.state, ReviewState(outcome.value))
    return replace(hold, state=state), RiskReviewConcluded(
        application_id=hold.application_id, outcome=outcome, reviewer_staff_id=reviewer_staff_id
    )


# --- what the app presents --------------------------------------------------------------------

# USE-6: what an application attempt carries for the signals, and all it carries. The app
# sends its installation's device id and the fingerprint its card tokeniser gives for the
# bank card the applicant pays with (both opaque, never the card number); loans keys each
# with its own secret on arrival, so only equality survives, and only inside loans.
PRESENTED_EVIDENCE: frozenset[str] = frozenset({"device_id", "card_fingerprint"})
# What an opaque id may look like: a UUID, a vendor id, a tokeniser's fingerprint.
_PRESENTED = re.compile(r"[A-Za-z0-9_.:-]{8,128}")
# 12 to 19 digits, however grouped: a primary account number's shape.
_CARD_NUMBER = re.compile(r"(?:\d[ -]?){11,18}\d")


class NotPresentable(ValueError):
    """A presented id is malformed, or is a card number where a fingerprint belongs."""


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def looks_like_card_number(value: str) -> bool:
    """A PAN's shape and check digit: refused before it is hashed, stored or logged."""
    if not _CARD_NUMBER.fullmatch(value):
        return False
    return _luhn(re.sub(r"[ -]", "", value))


@dataclass(frozen=True)
class PresentedEvidence:
    """What the app sent with an application attempt, as it sent it (never stored)."""

    device_id: str
    card_fingerprint: str

    def __post_init__(self) -> None:
        for name in sorted(PRESENTED_EVIDENCE):
            value = getattr(self, name)
            if looks_like_card_number(value):
                raise NotPresentable(f"{name} must be an opaque id, never a card number")
            if not _PRESENTED.fullmatch(value):
                raise NotPresentable(f"{name} must be 8-128 of A-Z a-z 0-9 _ . : -")


def presented(values: Mapping[str, str]) -> PresentedEvidence:
    """The evidence from what the edge received; a field outside `PRESENTED_EVIDENCE` fails
    (the app cannot widen what the signals read by sending more)."""
    extra = sorted(set(values) - PRESENTED_EVIDENCE)
    if extra:
        raise NotPresentable(f"not evidence the signals may use: {', '.join(extra)}")
    missing = sorted(PRESENTED_EVIDENCE - set(values))
    if missing:
        raise NotPresentable(f"missing evidence: {', '.join(missing)}")
    return PresentedEvidence(**values)


@dataclass(frozen=True)
class Pseudonyms:
    """The presented ids keyed with loans' secret: what the signals and the store see."""

    device_id: str
    card_fingerprint: str


def pseudonymise(secret: bytes, evidence: PresentedEvidence) -> Pseudonyms:
    """HMAC-SHA256 per id, each under its own label (a device id and a card fingerprint that
    happen to be equal give different digests)."""
    if len(secret) < 32:
        raise ValueError("the pseudonym key must be 32 bytes or more")

    def keyed(label: str, value: str) -> str:
        return hmac.new(secret, f"{label}:{value}".encode(), hashlib.sha256).hexdigest()

    return Pseudonyms(
        device_id=keyed("device", evidence.device_id),
        card_fingerprint=keyed("card", evidence.card_fingerprint),
    )


# --- holds, stages and the review's purpose ----------------------------------------------------


class ReviewStage(StrEnum):
    """Which step a hold stops: the application as received (no assessment), or its loan's
    payout (no acceptance, so no disbursement)."""

    APPLICATION = "application"
    DISBURSEMENT = "disbursement"


# The purposes a risk review serves, and so the ones an analyst may state for reading a
# review's evidence: USE-6's security, and USE-2's fraud detection (within credit
# assessment). Both are purposes identity's risk-analyst role may use.
REVIEW_PURPOSES: frozenset[Purpose] = frozenset({Purpose.SECURITY, Purpose.CREDIT_ASSESSMENT})


class PurposeNotServed(ValueError):
    """The stated purpose is not one a risk review serves."""


def review_purpose(purpose: Purpose) -> Purpose:
    if purpose not in REVIEW_PURPOSES:
        allowed = ", ".join(sorted(p.value for p in REVIEW_PURPOSES))
        raise PurposeNotServed(f"a risk review serves {allowed}, not {purpose.value}")
    return purpose


def reviewer_role(roles: Iterable[str]) -> StaffRole:
    """The role a review is concluded under (`NotARiskAnalyst` without it)."""
    if REVIEWER_ROLE.value not in set(roles):
        raise NotARiskAnalyst("only a risk analyst reviews risk holds")
    return REVIEWER_ROLE


# --- the notice of a refusal after review -------------------------------------------------------

# Reg B §1002.9(a)(1)(i): notice of action taken within 30 days, with the principal reason
# (§1002.9(b)(2); "Other, specify" on Form C-1, as no listed reason says it). No consumer
# report weighed on this decision, so the FCRA §615(a) disclosures of assessment's notice
# do not apply and are not claimed.
FRAUD_REFUSAL_REASON = "Unable to verify the authenticity of the application"


def refusal_notice(decided_at: datetime) -> str:
    """The plain-text notice of a refusal after a risk review (no report, no score)."""
    if decided_at.tzinfo is None:
        raise ValueError("decided_at must be timezone-aware")
    return "\n".join(
        [
            "Dear applicant,",
            "",
            f"Thank you for applying for a loan with {CREDITOR}. After reviewing your "
            "application, we are unable to extend the credit you applied for.",
            "",
            f"Date of our decision: {decided_at.date().isoformat()}",
            "",
            "Principal reason for our decision:",
            f"- {FRAUD_REFUSAL_REASON}",
            "",
            "This decision was not based on information from a consumer reporting agency.",
            "",
            ECOA_NOTICE,
            "",
            CREDITOR,
            "",
        ]
    )
