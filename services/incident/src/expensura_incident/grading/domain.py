"""The severity of a personal-data breach by ENISA's method (SEC-4): ENISA, "Recommendations
for a methodology of the assessment of severity of personal data breaches", working document
v1.0, December 2013.

    SE = DPC x EI + CB

- DPC, the data-processing context (1 to 4): a base score by the category of the breached data
  (simple 1, behavioural 2, financial 3, sensitive 4), moved by at most one of the method's
  contextual adjustments for that category (ADJUSTMENTS). Several categories breached: the
  highest DPC counts (the method grades the most critical data set).
- EI, the ease of identifying the individuals from the data: 0.25 negligible, 0.5 limited,
  0.75 significant, 1 maximum. It corrects DPC (a multiplier).
- CB, the circumstances of the breach, added: loss of confidentiality, of integrity, of
  availability (0, 0.25 or 0.5 each) and malicious intent (0.5).

Bands: Low < 2 ≤ Medium < 3 ≤ High < 4 ≤ Very high.

Every score is a multiple of 1/4, so the arithmetic is exact in binary floating point and a
boundary value (2, 3, 4) lands in its band exactly.

Pure: no I/O. No store, service or views yet: the triage action of the response workflow
(`response/domain.py`) carries an `Assessment`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum

from expensura_events.obligations import enforces


class DataCategory(StrEnum):
    """ENISA's four kinds of breached data."""

    SIMPLE = "simple"  # biographical, contact details, name, education, family, work history
    BEHAVIOURAL = "behavioural"  # location, traffic data, preferences and habits
    FINANCIAL = "financial"  # income, transactions, statements, cards, invoices, credit data
    SENSITIVE = "sensitive"  # health, political or religious beliefs, sexual life


BASE_SCORE: Mapping[DataCategory, int] = {
    DataCategory.SIMPLE: 1,
    DataCategory.BEHAVIOURAL: 2,
    DataCategory.FINANCIAL: 3,
    DataCategory.SENSITIVE: 4,
}


class Adjustment(StrEnum):
    """ENISA's contextual factors (its table of DPC scores, paraphrased). Each belongs to
    one category; they are alternative levels, not cumulative."""

    # simple data: volume or controller allow profiling, or assumptions on social or
    # financial status (+1); they suggest health, sexual life or beliefs (+2); vulnerable
    # people (minors, ...), for whom the data is critical to safety or health (+3)
    PROFILE_OR_STATUS = "profile-or-status"
    SENSITIVE_ASSUMPTIONS = "sensitive-assumptions"
    PERSONAL_SAFETY = "personal-safety"
    # behavioural data: no real insight, or easily gathered from public sources (-1); a
    # profile of everyday life and habits can be built (+1); one revealing sensitive data (+2)
    NO_BEHAVIOURAL_INSIGHT = "no-behavioural-insight"
    DETAILED_PROFILE = "detailed-profile"
    SENSITIVE_PROFILE = "sensitive-profile"
    # financial data: no insight into the financial situation, e.g. only that someone is a
    # bank's customer (-2); little, e.g. bare account numbers (-1); full card details that
    # enable fraud, or a detailed financial profile (+1)
    NO_FINANCIAL_INSIGHT = "no-financial-insight"
    LITTLE_FINANCIAL_INSIGHT = "little-financial-insight"
    FRAUD_OR_FULL_PROFILE = "fraud-or-full-profile"
    # sensitive data: no real insight, or public sources (-3); only generic assumptions (-2);
    # assumptions about sensitive information (-1)
    NO_SENSITIVE_INSIGHT = "no-sensitive-insight"
    GENERIC_ASSUMPTIONS = "generic-assumptions"
    ASSUMPTIONS_ON_SENSITIVE = "assumptions-on-sensitive"


ADJUSTMENTS: Mapping[DataCategory, Mapping[Adjustment, int]] = {
    DataCategory.SIMPLE: {
        Adjustment.PROFILE_OR_STATUS: +1,
        Adjustment.SENSITIVE_ASSUMPTIONS: +2,
        Adjustment.PERSONAL_SAFETY: +3,
    },
    DataCategory.BEHAVIOURAL: {
        Adjustment.NO_BEHAVIOURAL_INSIGHT: -1,
        Adjustment.DETAILED_PROFILE: +1,
        Adjustment.SENSITIVE_PROFILE: +2,
    },
    DataCategory.FINANCIAL: {
        Adjustment.NO_FINANCIAL_INSIGHT: -2,
        Adjustment.LITTLE_FINANCIAL_INSIGHT: -1,
        Adjustment.FRAUD_OR_FULL_PROFILE: +1,
    },
    DataCategory.SENSITIVE: {
        Adjustment.NO_SENSITIVE_INSIGHT: -3,
        Adjustment.GENERIC_ASSUMPTIONS: -2,
        Adjustment.ASSUMPTIONS_ON_SENSITIVE: -1,
    },
}


class EaseOfIdentification(float, Enum):
    NEGLIGIBLE = 0.25
    LIMITED = 0.5
    SIGNIFICANT = 0.75
    MAXIMUM = 1.0


class Confidentiality(float, Enum):
    NOT_LOST = 0.0  # or exposed, without evidence of unlawful processing: ENISA scores both 0
    KNOWN_RECIPIENTS = 0.25  # disclosed to a known number of recipients
    UNKNOWN_RECIPIENTS = 0.5  # disclosed to an unknown number of recipients


class Integrity(float, Enum):
    NOT_LOST = 0.0  # or altered, without sign of incorrect or unlawful use: both 0
    ALTERED_RECOVERABLE = 0.25  # possibly used wrongly or unlawfully, but recoverable
    ALTERED_UNRECOVERABLE = 0.5  # possibly used wrongly or unlawfully, not recoverable


class Availability(float, Enum):
    NOT_LOST = 0.0  # or unavailable but recovered without difficulty: both 0
    TEMPORARY = 0.25  # temporarily unavailable
    FULL = 0.5  # cannot be recovered, by the controller or the individual


MALICIOUS_INTENT = (
    0.5  # the breach was an intentional act to harm the controller or the individuals
)


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    VERY_HIGH = "very-high"


# Lower bounds, highest first: the first the score reaches is its band.
BANDS: tuple[tuple[float, Severity], ...] = (
    (4.0, Severity.VERY_HIGH),
    (3.0, Severity.HIGH),
    (2.0, Severity.MEDIUM),
    (float("-inf"), Severity.LOW),
)


class AdjustmentNotForCategory(ValueError):
    """An ENISA adjustment applied to a category it does not belong to."""


def band(score: float) -> Severity:
    return next(severity for floor, severity in BANDS if score >= floor)


@dataclass(frozen=True)
class DataSet:
    """One breached data set: its category and, if the context calls for it, the one
    ENISA adjustment that applies."""

    category: DataCategory
    adjustment: Adjustment | None = None

    def __post_init__(self) -> None:
        if self.adjustment is not None and self.adjustment not in ADJUSTMENTS[self.category]:
            raise AdjustmentNotForCategory(f"{self.adjustment} does not adjust {self.category}")

    @property
    def dpc(self) -> int:
        delta = 0 if self.adjustment is None else ADJUSTMENTS[self.category][self.adjustment]
        # The table's levels stay within 1 to 4 already; the clamp keeps it so if one is added.
        return max(1, min(4, BASE_SCORE[self.category] + delta))


@dataclass(frozen=True)
class Circumstances:
    confidentiality: Confidentiality = Confidentiality.NOT_LOST
    integrity: Integrity = Integrity.NOT_LOST
    availability: Availability = Availability.NOT_LOST
    malicious: bool = False

    @property
    def cb(self) -> float:
        return (
            self.confidentiality.value
            + self.integrity.value
            + self.availability.value
            + (MALICIOUS_INTENT if self.malicious else 0.0)
        )


class NoDataSet(ValueError):
    """A severity asked of a breach that names no breached data."""


@dataclass(frozen=True)
class Assessment:
    """A triage's grading: what was breached, how identifiable, in what circumstances."""

    data: tuple[DataSet, ...]
    identification: EaseOfIdentification
    circumstances: Circumstances

    def __post_init__(self) -> None:
        if not self.data:
            raise NoDataSet("name at least one breached data set")

    @property
    def dpc(self) -> int:
        return max(d.dpc for d in self.data)

    @property
    def score(self) -> float:
        return self.dpc * self.identification.value + self.circumstances.cb

    @property
    def severity(self) -> Severity:
        return band(self.score)


@enforces("SEC-4")
def assess(
    data: DataSet | tuple[DataSet, ...],
    identification: EaseOfIdentification,
    circumstances: Circumstances | None = None,
) -> Assessment:
    """The ENISA assessment of a breach (its `score` and `severity`)."""
    return Assessment(
        data if isinstance(data, tuple) else (data,),
        identification,
        circumstances or Circumstances(),
    )
