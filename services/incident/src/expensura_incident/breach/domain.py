"""Breach notices (SEC-5, USE-10): what a notice to the subjects of a breach must say, how it
reads in each customer's language, and when individual notice gives way to a public notice.
Pure: no I/O.

A breach notice has five required parts (SEC-5; the content the state laws require, e.g.
Cal. Civ. Code § 1798.82(d)): the situation (what happened, when), the impacts (the kinds
of data exposed), the measures taken, self-protection advice, and remedies (whom to
contact; the free credit report and security freeze). A notice missing any part is
refused before anything is planned.

Delivery goes through the one notification path (`notices/`): each breach notice is a
customer notice of kind `breach`, and its DPV states are that path's states (planned,
ongoing, completed, failed, not-needed + reason); `PublicNoticeState` adds nothing new.

Individual notice is impractical (`public_notice_needed`) when a subject has no channel
incident can reach them on, or when the count or the cost of individual notice crosses the
threshold the law allows for substitute notice (SUBSTITUTE_NOTICE, data): then a public
notice is published and recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from expensura_events.obligations import enforces

DEFAULT_LANGUAGE = "en"
MAX_PART = 4000  # characters per part: a notice is read, not scrolled


class IncompleteBreachNotice(ValueError):
    """A breach notice lacks one of its five required parts (the message names which)."""


@dataclass(frozen=True)
class BreachParts:
    """The five parts of a breach notice in one language."""

    situation: str
    impacts: tuple[str, ...]  # the kinds of data exposed, one per line
    measures: str
    advice: str
    remedies: str


PARTS = ("situation", "impacts", "measures", "advice", "remedies")

# The headings and title per language; a language not here reads as English.
HEADINGS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "title": "Important notice about your personal information",
        "situation": "What happened",
        "impacts": "What information was involved",
        "measures": "What we are doing",
        "advice": "What you can do",
        "remedies": "For more information",
    },
    "es": {
        "title": "Aviso importante sobre su información personal",
        "situation": "Qué sucedió",
        "impacts": "Qué información se vio afectada",
        "measures": "Qué estamos haciendo",
        "advice": "Qué puede hacer usted",
        "remedies": "Para más información",
    },
}


def _missing(parts: BreachParts) -> list[str]:
    out = [
        name
        for name in ("situation", "measures", "advice", "remedies")
        if not getattr(parts, name).strip()
    ]
    if not any(i.strip() for i in parts.impacts):
        out.insert(1, "impacts")
    return out


@dataclass(frozen=True)
class BreachContent:
    """A breach notice's text in each language it was written in; English is required
    (the fall-back for every customer whose language has no text)."""

    texts: Mapping[str, BreachParts]

    @classmethod
    @enforces("SEC-5")
    def of(cls, texts: Mapping[str, BreachParts]) -> BreachContent:
        """Raises IncompleteBreachNotice if English is missing or any text lacks a part."""
        if DEFAULT_LANGUAGE not in texts:
            raise IncompleteBreachNotice("the English text is required")
        for language, parts in texts.items():
            if language not in HEADINGS:
                raise IncompleteBreachNotice(f"no headings for language {language!r}")
            missing = _missing(parts)
            if missing:
                raise IncompleteBreachNotice(f"{language}: missing {', '.join(missing)}")
            if any(len(getattr(parts, p)) > MAX_PART for p in PARTS if p != "impacts"):
                raise IncompleteBreachNotice(f"{language}: a part exceeds {MAX_PART} characters")
        return cls(dict(texts))


def language_of(content: BreachContent, wanted: str | None) -> str:
    """The language the customer reads the notice in: theirs if the notice has a text in
    it ("es-MX" reads as "es"), English otherwise."""
    if wanted:
        base = wanted.strip().lower().replace("_", "-").split("-")[0]
        if base in content.texts:
            return base
    return DEFAULT_LANGUAGE


@dataclass(frozen=True)
class RenderedBreachNotice:
    language: str
    title: str
    body: str


@enforces("SEC-5", "USE-10")
def render(content: BreachContent, language: str | None) -> RenderedBreachNotice:
    """The notice as the notification path sends it to one customer: the title and the five
    parts under their headings, in the customer's language (English if none fits)."""
    lang = language_of(content, language)
    parts, heads = content.texts[lang], HEADINGS[lang]
    sections = [
        f"{heads['situation']}\n{parts.situation.strip()}",
        f"{heads['impacts']}\n" + "\n".join(f"- {i.strip()}" for i in parts.impacts if i.strip()),
        f"{heads['measures']}\n{parts.measures.strip()}",
        f"{heads['advice']}\n{parts.advice.strip()}",
        f"{heads['remedies']}\n{parts.remedies.strip()}",
    ]
    return RenderedBreachNotice(lang, heads["title"], "\n\n".join(sections) + "\n")


# --- idempotency -----------------------------------------------------------------------

_NOTICE_NAMESPACE = UUID("6f1b8a52-3c1e-4f0a-9a51-2b7d0c6e9e11")


def breach_notice_id(incident_id: UUID, subject_id: str) -> UUID:
    """The one notice of an incident to a subject: the same id on every run, so planning
    twice (a re-run, a crash mid-run) records, and sends, one notice."""
    return uuid.uuid5(_NOTICE_NAMESPACE, f"breach:{incident_id}:{subject_id}")


def public_notice_id(incident_id: UUID) -> UUID:
    """An incident has one public notice."""
    return uuid.uuid5(_NOTICE_NAMESPACE, f"public:{incident_id}")


# --- the public notice -----------------------------------------------------------------


@dataclass(frozen=True)
class SubstituteNoticeRule:
    """When the law lets a public (substitute) notice replace individual notice: the cost
    of individual notice above `cost_usd`, or more than `subjects` to notify, or no
    sufficient contact information for a subject. `source` cites the provision."""

    cost_usd: Decimal
    subjects: int
    source: str


# Cal. Civ. Code § 1798.82(j)(3): substitute notice when the cost of notice would exceed
# $250,000, the affected class exceeds 500,000 persons, or the agency does not have
# sufficient contact information. Data: another regime is another row.
SUBSTITUTE_NOTICE: Mapping[str, SubstituteNoticeRule] = {
    "US-CA": SubstituteNoticeRule(
        cost_usd=Decimal("250000"), subjects=500_000, source="Cal. Civ. Code § 1798.82(j)(3)"
    ),
}
DEFAULT_RULE = "US-CA"
# What one individual notice costs, by the channel it would go on (for the cost test):
# e-mail, push and SMS are near free; a printed letter with postage is the expensive one.
COST_PER_NOTICE_USD = Decimal("0.75")

# Reasons (fixed phrases: they go into events and rows).
NO_WORKING_CHANNEL = "no working channel"
TOO_MANY_SUBJECTS = "subjects above the substitute-notice threshold"
COST_TOO_HIGH = "cost of individual notice above the substitute-notice threshold"


@dataclass(frozen=True)
class PublicNoticeDecision:
    """Whether a public notice is needed, why (fixed phrases), and whether it replaces
    individual notice for everybody (`substitute`) or only covers those unreachable."""

    needed: bool
    reasons: tuple[str, ...]
    substitute: bool


@enforces("SEC-5", "USE-10")
def public_notice_needed(
    subjects: int,
    unreachable: int,
    rule: SubstituteNoticeRule = SUBSTITUTE_NOTICE[DEFAULT_RULE],
    cost_per_notice: Decimal = COST_PER_NOTICE_USD,
) -> PublicNoticeDecision:
    """The public-notice rule: needed when any subject has no working channel (it covers
    them), or when the count or the cost of individual notice crosses the rule's threshold
    (it may then replace individual notice: `substitute`; incident still sends the
    individual notices it can, which the law allows and the policy prefers)."""
    if subjects < 0 or not 0 <= unreachable <= subjects:
        raise ValueError("counts out of range")
    reasons: list[str] = []
    if unreachable:
        reasons.append(NO_WORKING_CHANNEL)
    substitute = False
    if subjects > rule.subjects:
        reasons.append(TOO_MANY_SUBJECTS)
        substitute = True
    if cost_per_notice * subjects > rule.cost_usd:
        reasons.append(COST_TOO_HIGH)
        substitute = True
    return PublicNoticeDecision(bool(reasons), tuple(reasons), substitute)


@dataclass(frozen=True)
class PublicNotice:
    """What the public route shows: the English text's situation, impacts, measures,
    advice and remedies, nothing about any one person (only counts are kept beside it)."""

    incident_id: UUID
    title: str
    body: str
    reasons: tuple[str, ...]


def public_notice(
    incident_id: UUID, content: BreachContent, reasons: Sequence[str]
) -> PublicNotice:
    rendered = render(content, DEFAULT_LANGUAGE)
    return PublicNotice(incident_id, rendered.title, rendered.body, tuple(reasons))
