"""Notification regimes as data (SEC-5): from a breach's blast radius, which laws require a
report to a regulator (and notices to residents), the deadline of each, the alert when 75 %
of the time is gone, and the draft of the FTC's report.

Who counts. The blast radius says, per residence, how many subjects were exposed and how well
their exposed values were protected; a subject is counted once, under the weakest protection
of its exposed values. Only values readable by whoever took them count:

- unsealed (plaintext) values;
- sealed values whose key was taken too: the Safeguards Rule treats customer information as
  unencrypted "if the encryption key was accessed by an unauthorized person" (16 CFR 314.2,
  "notification event"), and the state laws below carve out encrypted data only while the
  key is safe;
- not values sealed under a key that was not compromised (no notification event). Under
  GDPR too: the EDPB's breach guidelines (WP250 rev.01, endorsed by the EDPB) say a
  confidentiality breach of properly encrypted data with a safe key may not need notifying.

Deadlines run from discovery. A state law whose clock starts at the "determination" of the
breach (Florida, Texas, Colorado) is given the same period from discovery: never later, so
never missed.

Pure: no I/O. No store, service or views yet: the blast radius, the incident's deadlines and
the filing of a report will use these rules. The regimes and their sources are listed in
services/incident/README.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from expensura_events.obligations import enforces

ALERT_AT = 0.75  # the share of a deadline's period after which the incident raises an alert


class Protection(StrEnum):
    UNSEALED = "unsealed"
    SEALED_KEY_TAKEN = "sealed-key-taken"
    SEALED_SAFE_KEY = "sealed-safe-key"


# Readable by whoever took them: these, and only these, make a notification event.
NOTIFIABLE: frozenset[Protection] = frozenset({Protection.UNSEALED, Protection.SEALED_KEY_TAKEN})

# The residences under GDPR: the EU's 27 and, through the EEA Agreement, Iceland,
# Liechtenstein and Norway (ISO 3166-1 alpha-2).
GDPR_COUNTRIES: frozenset[str] = frozenset(
    {
        *("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE"),
        *("IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"),
        *("IS", "LI", "NO"),
    }
)


@dataclass(frozen=True)
class Exposed:
    """How many subjects of one residence had values exposed, under one protection.
    `residence`: ISO 3166-2 for a U.S. state ("US-CA"), ISO 3166-1 alpha-2 otherwise ("DE")."""

    residence: str
    protection: Protection
    subjects: int

    def __post_init__(self) -> None:
        if self.subjects < 0:
            raise ValueError("a negative count of subjects")


@dataclass(frozen=True)
class Exposure:
    """A blast radius's summary: the exposed subjects by residence and protection (each
    subject once), the kinds of information exposed, and when, if known."""

    groups: tuple[Exposed, ...]
    information_types: tuple[str, ...] = ()  # data categories, e.g. "contact", "credit"
    first_at: datetime | None = None
    last_at: datetime | None = None

    def notifiable(self, covers: Callable[[str], bool] = lambda _: True) -> int:
        """The subjects whose exposed values were readable, among the residences `covers`."""
        return sum(
            g.subjects for g in self.groups if g.protection in NOTIFIABLE and covers(g.residence)
        )


@dataclass(frozen=True)
class Regime:
    """One law's notification duty. `threshold`: the notifiable subjects (in `residences`;
    None: wherever they live) from which the regulator must be told. `within`: the
    regulator's deadline from discovery (None: no fixed period, "without unreasonable
    delay"). `residents_within` likewise for the notices to the people (`residents`: whether
    the law requires them at all). `unverified`: the fields not checked against the text."""

    code: str
    name: str
    regulator: str
    residences: frozenset[str] | None
    threshold: int
    within: timedelta | None
    residents: bool
    residents_within: timedelta | None
    citation: str
    content: str  # what the regulator's notice must hold
    unverified: tuple[str, ...] = ()

    def covers(self, residence: str) -> bool:
        return self.residences is None or residence in self.residences


def _state(code: str) -> frozenset[str]:
    return frozenset({f"US-{code}"})


DAYS_30 = timedelta(days=30)

FTC_SAFEGUARDS = Regime(
    code="ftc-safeguards",
    name="FTC Safeguards Rule",
    regulator="Federal Trade Commission",
    residences=None,  # the lender's duty, for its consumers wherever they live
    threshold=500,  # "at least 500 consumers"
    within=DAYS_30,  # "as soon as possible, and no later than 30 days after discovery"
    residents=False,  # the rule requires no notice to consumers (state laws do)
    residents_within=None,
    citation="16 CFR 314.4(j); 'notification event' in 16 CFR 314.2",
    content="the six items of 314.4(j)(1)-(6): see FtcSafeguardsReport",
)

GDPR = Regime(
    code="gdpr",
    name="GDPR",
    regulator="the lead supervisory authority",
    residences=GDPR_COUNTRIES,
    threshold=1,
    within=timedelta(hours=72),  # Art. 33(1): "not later than 72 hours after having become aware"
    # Art. 34: the data subjects, "without undue delay", when the risk to them is high.
    residents=True,
    residents_within=None,
    citation="Regulation (EU) 2016/679, Art. 33 and 34",
    content=(
        "Art. 33(3): the nature of the breach (categories and approximate numbers of data"
        " subjects and records), the DPO's contact, the likely consequences, the measures"
        " taken or proposed"
    ),
)

# U.S. state breach laws: the attorney general's (or equivalent) notice. Thresholds are the
# statutes' counts of the state's residents ("more than 500" is written 501).
STATE_LAWS: tuple[Regime, ...] = (
    Regime(
        code="us-ca",
        name="California data breach law",
        regulator="California Attorney General",
        residences=_state("CA"),
        threshold=501,  # "more than 500 California residents"
        within=None,  # a sample copy of the residents' notice, no fixed period
        residents=True,
        # S.B. 446 (2025) sets 30 calendar days from discovery from 2026-01-01 (and 15 days
        # after the residents' notice for the AG's copy): not checked against the statute.
        residents_within=DAYS_30,
        citation="Cal. Civ. Code § 1798.82(a), (f)",
        content="a sample copy of the notice sent to residents, without personal information",
        unverified=("residents_within",),
    ),
    Regime(
        code="us-fl",
        name="Florida Information Protection Act",
        regulator="Florida Department of Legal Affairs (Attorney General)",
        residences=_state("FL"),
        threshold=500,
        within=DAYS_30,  # "no later than 30 days after the determination of a breach"
        residents=True,
        residents_within=DAYS_30,
        citation="Fla. Stat. § 501.171(3), (4)",
        content=(
            "a synopsis of the events, the number of Floridians affected, services offered,"
            " a copy of the notice, a contact"
        ),
    ),
    Regime(
        code="us-tx",
        name="Texas Identity Theft Enforcement and Protection Act",
        regulator="Texas Attorney General",
        residences=_state("TX"),
        threshold=250,
        within=DAYS_30,  # 30 days since S.B. 768 (2023), formerly 60
        residents=True,
        residents_within=timedelta(days=60),
        citation="Tex. Bus. & Com. Code § 521.053(b), (i)",
        content=(
            "the nature and circumstances of the breach, the number of Texans affected,"
            " measures taken and to be taken, whether law enforcement is engaged"
        ),
    ),
    Regime(
        code="us-wa",
        name="Washington data breach law",
        regulator="Washington Attorney General",
        residences=_state("WA"),
        threshold=501,  # "more than five hundred Washington residents"
        within=DAYS_30,  # "no more than thirty calendar days after the breach was discovered"
        residents=True,
        residents_within=DAYS_30,
        citation="RCW 19.255.010",
        content=(
            "the types of personal information, the time frame of exposure, the number of"
            " Washington residents affected, the containment steps, a sample copy of the notice"
        ),
    ),
    Regime(
        code="us-co",
        name="Colorado data breach law",
        regulator="Colorado Attorney General",
        residences=_state("CO"),
        threshold=500,
        within=DAYS_30,  # "not later than thirty days after the date of determination"
        residents=True,
        residents_within=DAYS_30,
        citation="Colo. Rev. Stat. § 6-1-716(2)",
        # The statute's list of the AG notice's contents was not checked.
        content="notice of the breach",
        unverified=("content",),
    ),
    Regime(
        code="us-ny",
        name="New York SHIELD Act",
        regulator="New York Attorney General, Department of State and Division of State Police",
        residences=_state("NY"),
        threshold=1,  # any New York resident
        within=None,  # told of the notices' timing, content and distribution: no fixed period
        residents=True,
        # The 2024 amendment's 30 days from discovery: not checked against the statute.
        residents_within=DAYS_30,
        citation="N.Y. Gen. Bus. Law § 899-aa(2), (8)(a)",
        content=(
            "the timing, content and distribution of the notices and the approximate number"
            " of affected persons, with a copy of the notice"
        ),
        unverified=("residents_within",),
    ),
    Regime(
        code="us-ma",
        name="Massachusetts data breach law",
        regulator=(
            "Massachusetts Attorney General and the Office of Consumer Affairs and Business"
            " Regulation"
        ),
        residences=_state("MA"),
        threshold=1,  # any Massachusetts resident
        within=None,  # "as soon as practicable and without unreasonable delay"
        residents=True,
        residents_within=None,
        citation="Mass. Gen. Laws ch. 93H, § 3(b)",
        content=(
            "the nature of the breach, the number of Massachusetts residents affected,"
            " the steps taken or planned"
        ),
    ),
)

REGIMES: tuple[Regime, ...] = (FTC_SAFEGUARDS, GDPR, *STATE_LAWS)
BY_CODE: Mapping[str, Regime] = {r.code: r for r in REGIMES}


@dataclass(frozen=True)
class Applicable:
    """A regime a breach falls under: its notifiable subjects, and whether that reaches the
    regulator's threshold (below it, only the residents' notices are due)."""

    regime: Regime
    subjects: int

    @property
    def report_due(self) -> bool:
        return self.subjects >= self.regime.threshold


@enforces("SEC-5")
def applicable_regimes(
    exposure: Exposure, regimes: Iterable[Regime] = REGIMES
) -> tuple[Applicable, ...]:
    """The regimes a breach falls under: some of its notifiable subjects live where the
    regime reaches, and it asks something of the lender for them (a regulator's report at
    the threshold, or notices to the residents)."""
    out = []
    for regime in regimes:
        subjects = exposure.notifiable(regime.covers)
        if subjects > 0 and (regime.residents or subjects >= regime.threshold):
            out.append(Applicable(regime, subjects))
    return tuple(out)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a time without a time zone")
    return at


@enforces("SEC-5")
def deadline(regime: Regime, discovered_at: datetime) -> datetime | None:
    """When the regulator's report is due at the latest (None: no fixed period)."""
    if regime.within is None:
        return None
    return _aware(discovered_at) + regime.within


def residents_deadline(regime: Regime, discovered_at: datetime) -> datetime | None:
    """When the residents' notices are due at the latest (None: none, or no fixed period)."""
    if not regime.residents or regime.residents_within is None:
        return None
    return _aware(discovered_at) + regime.residents_within


@enforces("SEC-5")
def alert_due(regime: Regime, discovered_at: datetime, now: datetime) -> bool:
    """Whether 75 % of the regulator's period has elapsed (and still until it is filed:
    the caller stops asking once the report is recorded). Never for no fixed period."""
    if regime.within is None:
        return False
    return _aware(now) >= _aware(discovered_at) + regime.within * ALERT_AT


class NotReportable(ValueError):
    """A draft asked for a breach below the FTC's threshold: no notification event to report."""


@dataclass(frozen=True)
class FtcSafeguardsReport:
    """The FTC's notice, 16 CFR 314.4(j)(1)-(6), as a draft an officer completes and files
    on the FTC's online form."""

    institution_name: str  # (1) name and contact information of the financial institution
    institution_contact: str
    information_types: tuple[str, ...]  # (2) the types of information involved
    event_from: date | None  # (3) the date or date range, if possible to determine
    event_to: date | None
    consumers: int  # (4) consumers affected or potentially affected
    description: str  # (5) a general description of the event
    # (6) whether law enforcement gave a written determination that public notice would
    # impede a criminal investigation or harm national security, and how to reach them
    law_enforcement_determination: bool
    law_enforcement_contact: str | None
    discovered_at: datetime
    due_by: datetime


@enforces("SEC-5")
def draft_ftc_report(
    exposure: Exposure,
    *,
    discovered_at: datetime,
    institution_name: str,
    institution_contact: str,
    description: str,
    law_enforcement_contact: str | None = None,
) -> FtcSafeguardsReport:
    """The FTC report's draft from the blast radius; NotReportable below 500 consumers."""
    consumers = exposure.notifiable(FTC_SAFEGUARDS.covers)
    if consumers < FTC_SAFEGUARDS.threshold:
        raise NotReportable(f"{consumers} consumers, fewer than {FTC_SAFEGUARDS.threshold}")
    due_by = deadline(FTC_SAFEGUARDS, discovered_at)
    assert due_by is not None  # the rule has a fixed period
    return FtcSafeguardsReport(
        institution_name=institution_name,
        institution_contact=institution_contact,
        information_types=exposure.information_types,
        event_from=None if exposure.first_at is None else exposure.first_at.date(),
        event_to=None if exposure.last_at is None else exposure.last_at.date(),
        consumers=consumers,
        description=description,
        law_enforcement_determination=law_enforcement_contact is not None,
        law_enforcement_contact=law_enforcement_contact,
        discovered_at=discovered_at,
        due_by=due_by,
    )
