"""The purposes of the policy (USE-1 … USE-10) as a versioned, machine-readable taxonomy.

Each version says which data categories the purpose may use and up to which grade. A new
purpose, or a version that widens what a purpose uses, needs fresh consent from each user
before it applies to them (RUL-4): a consent given for version n covers only what version n
used. Pure: no framework, no database.
"""

from __future__ import annotations

from dataclasses import dataclass

from expensura_events.obligations import enforces
from expensura_events.vocabulary import DataCategory as C
from expensura_events.vocabulary import Grade, Purpose


@dataclass(frozen=True)
class PurposeVersion:
    purpose: Purpose
    version: int
    categories: frozenset[C]
    max_grade: Grade
    discloses: bool = False  # a disclosure purpose: consent must name the recipients

    @property
    def dpv(self) -> tuple[str, ...]:
        return self.purpose.info.dpv

    @property
    def policy_ref(self) -> str:
        return self.purpose.info.policy_ref

    def widens(self, older: PurposeVersion) -> bool:
        return not self.categories <= older.categories or _rank(self.max_grade) > _rank(
            older.max_grade
        )


def _rank(grade: Grade) -> int:
    return [Grade.GENERAL, Grade.PERSONAL, Grade.SENSITIVE].index(grade)


def _v(
    purpose: Purpose, version: int, grade: Grade, *cats: C, discloses: bool = False
) -> PurposeVersion:
    return PurposeVersion(purpose, version, frozenset(cats), grade, discloses)


S, P, G = Grade.SENSITIVE, Grade.PERSONAL, Grade.GENERAL

# Oldest first per purpose; the last is current. Add a version, never edit one.
HISTORY: dict[Purpose, tuple[PurposeVersion, ...]] = {
    Purpose.IDENTITY_VERIFICATION: (
        _v(
            Purpose.IDENTITY_VERIFICATION,
            1,
            S,
            C.OFFICIAL_ID,
            C.BANK_ACCOUNT,
            C.CONTACT,
            C.FACIAL_PRINT,
            C.NAME,
            discloses=True,
        ),
    ),
    Purpose.CREDIT_ASSESSMENT: (
        _v(
            Purpose.CREDIT_ASSESSMENT,
            1,
            S,
            C.CREDIT_SCORE,
            C.CREDIT_RECORD,
            C.INCOME,
            C.CONTACT,
            C.LOAN_RECORD,
            C.OFFICIAL_ID,
            discloses=True,
        ),
    ),
    Purpose.LOAN_SERVICE_PROVISION: (
        _v(
            Purpose.LOAN_SERVICE_PROVISION,
            1,
            S,
            C.LOAN_RECORD,
            C.BANK_ACCOUNT,
            C.CONTACT,
            C.NAME,
            C.OFFICIAL_ID,
        ),
    ),
    Purpose.CUSTOMER_CARE: (_v(Purpose.CUSTOMER_CARE, 1, S, C.CONTACT, C.NAME, C.LOAN_RECORD),),
    Purpose.PERSONALISATION: (
        _v(Purpose.PERSONALISATION, 1, P, C.DEVICE_BASED),
        # v2 also uses loan history for recommendations: wider, so fresh consent is needed.
        _v(Purpose.PERSONALISATION, 2, P, C.DEVICE_BASED, C.LOAN_RECORD),
    ),
    Purpose.SECURITY: (_v(Purpose.SECURITY, 1, P, C.DEVICE_BASED, C.AUTHENTICATION),),
    Purpose.MARKETING: (_v(Purpose.MARKETING, 1, S, C.CONTACT, C.NAME),),
    Purpose.DISPUTE_RESOLUTION: (
        _v(
            Purpose.DISPUTE_RESOLUTION,
            1,
            S,
            C.CONTACT,
            C.NAME,
            C.LOAN_RECORD,
            C.OFFICIAL_ID,
            discloses=True,
        ),
    ),
    Purpose.FEEDBACK_AND_DIAGNOSTICS: (
        _v(Purpose.FEEDBACK_AND_DIAGNOSTICS, 1, P, C.CONTACT, C.DEVICE_BASED),
    ),
    Purpose.COMMUNICATION: (_v(Purpose.COMMUNICATION, 1, S, C.CONTACT, C.NAME),),
    Purpose.ACCOUNT_MANAGEMENT: (
        _v(Purpose.ACCOUNT_MANAGEMENT, 1, S, C.CONTACT, C.NAME, C.AUTHENTICATION),
    ),
    Purpose.LEGAL_COMPLIANCE: (_v(Purpose.LEGAL_COMPLIANCE, 1, S, *C, discloses=True),),
}


def current(purpose: Purpose) -> PurposeVersion:
    return HISTORY[purpose][-1]


def version(purpose: Purpose, number: int) -> PurposeVersion | None:
    return next((v for v in HISTORY[purpose] if v.version == number), None)


@enforces("RUL-1")
def outside(purpose: Purpose, categories: set[str]) -> set[str]:
    """The categories the purpose's current version may not use (empty: all may be)."""
    return categories - {c.value for c in current(purpose).categories}


def refusal(purpose: Purpose, categories: set[str]) -> str | None:
    """Why these categories may not be used for the purpose, or None if they may."""
    if extra := outside(purpose, categories):
        return f"{purpose.value} may not use {', '.join(sorted(extra))}"
    return None


@enforces("RUL-4")
def consent_still_covers(purpose: Purpose, consented_version: int) -> bool:
    """False when the purpose has been widened since the user consented (RUL-4)."""
    old = version(purpose, consented_version)
    if old is None:
        return False
    return all(not later.widens(old) for later in HISTORY[purpose] if later.version > old.version)
