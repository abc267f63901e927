"""The blast radius (SEC-5): from the index of access and disclosure events to who was
exposed, which categories and fields, and how well each subject's exposed values were
protected. Pure: no I/O.

Index rows. Each access or disclosure event becomes one row per field it names (`rows_of`):
who read (partner, staff member, service, the subject, the public), the credential when the
event names one, the subject, the field and its data category, whether the value reached the
reader sealed and under whose key (`sealed_by`, a key owner: the subject, or the subject's
key for a retention hold), when, and which log recorded it.

- `sharing.DisclosureMade` / `PublicDisclosureMade`: the values left in plaintext (that is
  what a disclosure is). A partner's pull names the credential it used (`client_id`), so a
  credential scope finds exactly the subjects that credential pulled. Disclosures recorded
  before the gateway recorded it name none: a credential scope misses them, a partner scope
  over the credential's lifetime finds them.
- `platform.PersonalDataAccessed`: the reader saw the values in plaintext, except a field
  recorded as `<name>_sealed` (a reader that received the sealed box, not the value), which
  is sealed under the event's key owner. `["*"]` / `["all"]` (a subject's access request)
  is kept as it is.
- A field's category: the gateway's fields by their category (`FIELD_CATEGORIES`), an
  access event's field under its one category when it names one, and otherwise under each of
  the categories the event names (never fewer: over-reporting a category is safe, missing
  one is not).

Protection (the Safeguards Rule, 16 CFR 314.2 "notification event", and the regimes
domain): plaintext is always notifiable; a value sealed under a key owner the scope lists
as compromised counts as unencrypted; sealed under any other key it is no notification
event. A subject is counted once, under the weakest protection among its values in scope.

Residence. The incident service keeps no residence: `exposure_summary` takes one per
subject where the caller has it, and files every other subject under `UNKNOWN_RESIDENCE`
("ZZ", ISO 3166's user-assigned code for an unknown country). The FTC Safeguards Rule
counts them (it reaches every consumer); a state law or GDPR cannot place them, so
`applicable_regimes_conservatively` counts them as residents of EVERY regime's residences:
an unknown residence never hides a duty, at the cost of possibly reporting one too many.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from expensura_events.catalog.incident_exposure import ScopeKind
from expensura_events.catalog.platform import PersonalDataAccessed
from expensura_events.catalog.sharing import DisclosureMade, PublicDisclosureMade
from expensura_events.envelope import EventEnvelope, key_owner
from expensura_events.obligations import enforces
from expensura_events.vocabulary import PUBLIC_RECIPIENT, ActorKind, DataCategory
from expensura_incident.regimes.domain import (
    NOTIFIABLE,
    REGIMES,
    Applicable,
    Exposed,
    Exposure,
    Protection,
    Regime,
)

INDEXED_TYPES: frozenset[str] = frozenset(
    {
        PersonalDataAccessed.event_type,
        DisclosureMade.event_type,
        PublicDisclosureMade.event_type,
    }
)

# Who read, as the index keeps it (`actor_kind`).
PARTNER, STAFF, SERVICE, USER, PUBLIC = "partner", "staff", "service", "user", "public"
_ACTOR_KINDS = {
    ActorKind.PARTNER: PARTNER,
    ActorKind.STAFF: STAFF,
    ActorKind.SYSTEM: SERVICE,
    ActorKind.USER: USER,
}

# The fields the sharing gateway discloses, with their category (the gateway's own table,
# which incident may not import: kept in step by `test_exposure_domain`).
FIELD_CATEGORIES: Mapping[str, str] = {
    "email": DataCategory.CONTACT.value,
    "phone": DataCategory.CONTACT.value,
}
UNKNOWN_CATEGORY = "unknown"  # a disclosed field the table does not know (counted, not lost)
SEALED_SUFFIX = "_sealed"
UNKNOWN_RESIDENCE = "ZZ"
MAX_WINDOW = timedelta(days=3660)  # ten years: a window beyond is a mistake, not a scope

# Weakest first: a subject is counted under the first of its values' protections.
_ORDER = (Protection.UNSEALED, Protection.SEALED_KEY_TAKEN, Protection.SEALED_SAFE_KEY)
_RANK = {p: i for i, p in enumerate(_ORDER)}


class BadScope(ValueError):
    """A scope the blast radius cannot answer (empty value, an unaware or inverted window)."""


@dataclass(frozen=True)
class Scope:
    """Whose accesses, over [start, end), with the key owners whose keys were taken."""

    kind: ScopeKind
    value: str
    start: datetime
    end: datetime
    compromised_key_owners: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.value or len(self.value) > 200:
            raise BadScope("a scope names one partner, credential, staff member, service …")
        for at in (self.start, self.end):
            if at.tzinfo is None or at.utcoffset() is None:
                raise BadScope("a window without a time zone")
        if self.end <= self.start:
            raise BadScope("the window ends before it starts")
        if self.end - self.start > MAX_WINDOW:
            raise BadScope("a window longer than ten years")


@dataclass(frozen=True)
class IndexRow:
    """One exposed field of one subject, as the index keeps it."""

    at: datetime
    actor_kind: str
    actor: str
    credential: str | None
    subject_id: str
    category: str
    field: str
    sealed_by: str | None  # the key owner it was sealed under; None: plaintext
    source: str
    event_id: str


def _actor(event: EventEnvelope) -> tuple[str, str]:
    if event.event_type == PublicDisclosureMade.event_type:
        return PUBLIC, PUBLIC_RECIPIENT
    if event.event_type == DisclosureMade.event_type:
        return PARTNER, str(_get(event.payload, "partner_id") or event.actor.id)
    return _ACTOR_KINDS[event.actor.kind], event.actor.id


def _get(payload: Any, name: str) -> Any:
    return payload.get(name) if isinstance(payload, dict) else getattr(payload, name, None)


def _categories(event_type: str, fld: str, named: Sequence[str]) -> list[str]:
    base = fld.removesuffix(SEALED_SUFFIX)
    if event_type != PersonalDataAccessed.event_type:
        return [FIELD_CATEGORIES.get(base, UNKNOWN_CATEGORY)]
    if len(named) == 1:
        return list(named)
    known = FIELD_CATEGORIES.get(base)
    if known is not None and known in named:
        return [known]
    return sorted(set(named)) or [UNKNOWN_CATEGORY]


@enforces("SEC-5")
def rows_of(event: EventEnvelope) -> list[IndexRow]:
    """The index rows of one access or disclosure event (none for any other event, or one
    about no subject)."""
    if event.event_type not in INDEXED_TYPES or event.subject_id is None:
        return []
    payload = event.payload
    kind, actor = _actor(event)
    credential = _get(payload, "client_id")
    named = [str(c) for c in (_get(payload, "categories") or [])]
    owner = key_owner(event.subject_id, event.retention_hold)
    rows = []
    for fld in sorted({str(f) for f in _get(payload, "fields") or []}):
        sealed = event.event_type == PersonalDataAccessed.event_type and fld.endswith(SEALED_SUFFIX)
        for category in _categories(event.event_type, fld, named):
            rows.append(
                IndexRow(
                    at=event.occurred_at,
                    actor_kind=kind,
                    actor=actor,
                    credential=None if credential is None else str(credential),
                    subject_id=event.subject_id,
                    category=category,
                    field=fld.removesuffix(SEALED_SUFFIX),
                    sealed_by=owner if sealed else None,
                    source=event.source,
                    event_id=str(event.event_id),
                )
            )
    return rows


def protection(sealed_by: str | None, compromised: frozenset[str]) -> Protection:
    """How well one exposed value was protected (see the module's docstring)."""
    if sealed_by is None:
        return Protection.UNSEALED
    if sealed_by in compromised:
        return Protection.SEALED_KEY_TAKEN
    return Protection.SEALED_SAFE_KEY


@dataclass(frozen=True)
class Group:
    """An index group as the store returns it: a subject's field under one sealing, with
    when it was first and last read within the window."""

    subject_id: str
    category: str
    field: str
    sealed_by: str | None
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class BlastRadius:
    """Who had values in scope (`protection`: each subject's weakest), which of them count
    (`notifiable`), and per category and field the notifiable subjects."""

    scope: Scope
    protection: Mapping[str, Protection]
    categories: Mapping[str, int]
    fields: Mapping[str, int]
    first_at: datetime | None
    last_at: datetime | None
    information_types: tuple[str, ...] = field(default=())

    @property
    def subjects(self) -> frozenset[str]:
        return frozenset(self.protection)

    @property
    def notifiable(self) -> frozenset[str]:
        """The exposed subjects: a value of theirs was readable by whoever took it."""
        return frozenset(s for s, p in self.protection.items() if p in NOTIFIABLE)

    def by_protection(self) -> dict[str, int]:
        counts = Counter(p.value for p in self.protection.values())
        return {p.value: counts.get(p.value, 0) for p in _ORDER}


@enforces("SEC-5")
def blast_radius(scope: Scope, groups: Iterable[Group]) -> BlastRadius:
    """The blast radius of `scope` from its index groups (already limited to the scope and
    window by the store)."""
    weakest: dict[str, Protection] = {}
    per_category: dict[str, set[str]] = {}
    per_field: dict[str, set[str]] = {}
    first: datetime | None = None
    last: datetime | None = None
    for g in groups:
        p = protection(g.sealed_by, scope.compromised_key_owners)
        current = weakest.get(g.subject_id)
        if current is None or _RANK[p] < _RANK[current]:
            weakest[g.subject_id] = p
        if p in NOTIFIABLE:
            per_category.setdefault(g.category, set()).add(g.subject_id)
            per_field.setdefault(g.field, set()).add(g.subject_id)
            first = g.first_at if first is None else min(first, g.first_at)
            last = g.last_at if last is None else max(last, g.last_at)
    return BlastRadius(
        scope=scope,
        protection=weakest,
        categories={c: len(s) for c, s in sorted(per_category.items())},
        fields={f: len(s) for f, s in sorted(per_field.items())},
        first_at=first,
        last_at=last,
        information_types=tuple(sorted(per_category)),
    )


@enforces("SEC-5")
def exposure_summary(radius: BlastRadius, residence_of: Mapping[str, str] = {}) -> Exposure:
    """The regimes domain's summary: subjects per residence under their weakest protection;
    a subject without a known residence under `UNKNOWN_RESIDENCE`."""
    counts = Counter(
        (residence_of.get(s, UNKNOWN_RESIDENCE), p) for s, p in radius.protection.items()
    )
    groups = tuple(
        Exposed(residence=r, protection=p, subjects=n)
        for (r, p), n in sorted(counts.items(), key=lambda kv: (kv[0][0], _RANK[kv[0][1]]))
    )
    return Exposure(
        groups=groups,
        information_types=radius.information_types,
        first_at=radius.first_at,
        last_at=radius.last_at,
    )


def _known_and_covered(regime: Regime, residence: str) -> bool:
    return residence != UNKNOWN_RESIDENCE and regime.covers(residence)


@enforces("SEC-5")
def applicable_regimes_conservatively(
    exposure: Exposure, regimes: Iterable[Regime] = REGIMES
) -> tuple[Applicable, ...]:
    """`regimes.applicable_regimes`, with the subjects of unknown residence counted as
    residents of every regime's residences (see the module's docstring)."""
    unknown = exposure.notifiable(lambda r: r == UNKNOWN_RESIDENCE)
    out = []
    for regime in regimes:
        subjects = unknown + exposure.notifiable(functools.partial(_known_and_covered, regime))
        if subjects > 0 and (regime.residents or subjects >= regime.threshold):
            out.append(Applicable(regime, subjects))
    return tuple(out)
