"""The blast radius's rules (SEC-5): index rows from real event types, exactly the exposed
subjects (no more, no fewer), values sealed under a safe key excluded, a taken key counted,
each subject once under its weakest protection, and the regimes' summary."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from expensura_events.catalog.incident_exposure import ScopeKind
from expensura_events.catalog.platform import PersonalDataAccessed
from expensura_events.catalog.sharing import DisclosureMade, PublicDisclosureMade
from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, new_event_id
from expensura_events.vocabulary import ActorKind, DataCategory, Purpose
from expensura_incident.exposure.domain import (
    FIELD_CATEGORIES,
    UNKNOWN_RESIDENCE,
    BadScope,
    Group,
    IndexRow,
    Scope,
    applicable_regimes_conservatively,
    blast_radius,
    exposure_summary,
    protection,
    rows_of,
)
from expensura_incident.regimes.domain import Protection, applicable_regimes

T0 = datetime(2026, 11, 1, tzinfo=UTC)
WEEK = Scope(ScopeKind.PARTNER, "acme", T0, T0 + timedelta(days=7))


def _envelope(
    payload: DomainEvent, subject: str, actor: Actor, hold: str | None = None
) -> EventEnvelope:
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source="identity",
        stream_id=f"access-{subject}",
        stream_version=0,
        subject_id=subject,
        actor=actor,
        purpose=Purpose.CUSTOMER_CARE,
        correlation_id=new_event_id(),
        occurred_at=T0 + timedelta(hours=1),
        retention_hold=hold,
        payload=payload,
    )


def _disclosure(subject: str, partner: str, fields: list[str]) -> EventEnvelope:
    return _envelope(
        DisclosureMade(
            disclosure_id=uuid.uuid4(),
            partner_id=partner,
            fields=fields,
            decision_id=uuid.uuid4(),
            decided_at=T0,
            basis={},
            agreement_id=uuid.uuid4(),
        ),
        subject,
        Actor(kind=ActorKind.PARTNER, id=partner),
    )


def _group(subject: str, sealed_by: str | None, fld: str = "email") -> Group:
    return Group(subject, DataCategory.CONTACT.value, fld, sealed_by, T0, T0 + timedelta(hours=2))


@pytest.mark.obligation("SEC-5")
def test_a_disclosure_is_a_plaintext_row_per_field_under_the_partner() -> None:
    rows = rows_of(_disclosure("s1", "acme", ["phone", "email"]))
    assert [(r.actor_kind, r.actor, r.field, r.category, r.sealed_by) for r in rows] == [
        ("partner", "acme", "email", "pd:Contact", None),
        ("partner", "acme", "phone", "pd:Contact", None),
    ]
    assert {r.subject_id for r in rows} == {"s1"} and rows[0].at == T0 + timedelta(hours=1)


@pytest.mark.obligation("SEC-5")
def test_a_public_disclosure_is_indexed_under_the_public() -> None:
    event = _envelope(
        PublicDisclosureMade(
            disclosure_id=uuid.uuid4(), fields=["email"], decision_id=uuid.uuid4(), basis={}
        ),
        "s1",
        Actor.system("sharing-gateway"),
    )
    [row] = rows_of(event)
    assert (row.actor_kind, row.actor, row.sealed_by) == ("public", "public", None)


@pytest.mark.obligation("SEC-5")
def test_an_access_names_staff_or_service_and_a_sealed_box_its_key_owner() -> None:
    staff = _envelope(
        PersonalDataAccessed(fields=["email", "phone"], categories=["pd:Contact"]),
        "s1",
        Actor(kind=ActorKind.STAFF, id="alice", role="customer-service"),
    )
    assert {(r.actor_kind, r.actor, r.field, r.sealed_by) for r in rows_of(staff)} == {
        ("staff", "alice", "email", None),
        ("staff", "alice", "phone", None),
    }
    service = _envelope(
        PersonalDataAccessed(fields=["email_sealed"], categories=["pd:Contact"]),
        "s2",
        Actor.system("loans"),
        hold="loan-records",
    )
    [row] = rows_of(service)
    assert (row.actor_kind, row.actor, row.field) == ("service", "loans", "email")
    assert row.sealed_by == "s2#hold:loan-records"


@pytest.mark.obligation("SEC-5")
def test_a_field_of_an_access_with_several_categories_is_never_under_fewer() -> None:
    event = _envelope(
        PersonalDataAccessed(
            fields=["email", "score"], categories=["pd:Contact", "pd:CreditScore"]
        ),
        "s1",
        Actor(kind=ActorKind.STAFF, id="bob"),
    )
    assert {(r.field, r.category) for r in rows_of(event)} == {
        ("email", "pd:Contact"),  # the gateway's table knows it
        ("score", "pd:Contact"),  # unknown: under each category the event names
        ("score", "pd:CreditScore"),
    }


def test_other_events_and_subjectless_events_make_no_rows() -> None:
    event = _disclosure("s1", "acme", ["email"]).model_copy(update={"subject_id": None})
    assert rows_of(event) == []


def test_the_gateways_fields_keep_their_category() -> None:
    """Incident's copy of the gateway's table (a service never imports another: a test may)."""
    from expensura_sharing_gateway.partners.domain import FIELD_CATEGORIES as GATEWAY

    assert {f: c.value for f, c in GATEWAY.items()} == dict(FIELD_CATEGORIES)


@pytest.mark.obligation("SEC-5")
def test_protection_follows_the_safeguards_rule() -> None:
    taken = frozenset({"s2"})
    assert protection(None, taken) is Protection.UNSEALED
    assert protection("s2", taken) is Protection.SEALED_KEY_TAKEN
    assert protection("s3", taken) is Protection.SEALED_SAFE_KEY
    assert protection("s2#hold:loans", taken) is Protection.SEALED_SAFE_KEY  # another key


@pytest.mark.obligation("SEC-5")
def test_the_blast_radius_is_exactly_the_exposed_subjects() -> None:
    exposed = {f"plain-{i}" for i in range(5)} | {"taken"}
    scope = Scope(
        ScopeKind.PARTNER, "acme", T0, T0 + timedelta(days=7), frozenset({"taken", "k-other"})
    )
    groups = [
        *(_group(s, None) for s in sorted(exposed - {"taken"})),
        _group("taken", "taken"),  # sealed, but its key was taken
        _group("safe", "safe"),  # sealed under a key that was not taken
        _group("safe-hold", "safe-hold#hold:loans"),
    ]
    radius = blast_radius(scope, groups)
    assert radius.notifiable == exposed  # no more, no fewer
    assert radius.subjects == exposed | {"safe", "safe-hold"}
    assert radius.protection["safe"] is Protection.SEALED_SAFE_KEY
    assert radius.by_protection() == {"unsealed": 5, "sealed-key-taken": 1, "sealed-safe-key": 2}
    assert radius.categories == {"pd:Contact": 6} and radius.fields == {"email": 6}
    assert radius.first_at == T0


@pytest.mark.obligation("SEC-5")
def test_a_subject_counts_once_under_its_weakest_protection() -> None:
    radius = blast_radius(
        WEEK,
        [_group("s1", "s1"), _group("s1", None, "phone"), _group("s2", "s2"), _group("s2", "s2")],
    )
    assert dict(radius.protection) == {
        "s1": Protection.UNSEALED,
        "s2": Protection.SEALED_SAFE_KEY,
    }
    # only the readable value counts for the categories and fields
    assert radius.fields == {"phone": 1} and radius.notifiable == {"s1"}


@pytest.mark.obligation("SEC-5")
def test_nothing_in_scope_exposes_no_one() -> None:
    radius = blast_radius(WEEK, [])
    assert radius.subjects == frozenset() and radius.first_at is None
    assert applicable_regimes(exposure_summary(radius)) == ()


@pytest.mark.obligation("SEC-5")
def test_the_summary_counts_subjects_per_residence_and_unknown_conservatively() -> None:
    groups = [_group(f"ca-{i}", None) for i in range(600)] + [
        _group("de-1", None),
        _group("nowhere", None),
        _group("safe", "safe"),
    ]
    radius = blast_radius(WEEK, groups)
    residence = {f"ca-{i}": "US-CA" for i in range(600)} | {"de-1": "DE", "safe": "US-TX"}
    summary = exposure_summary(radius, residence)
    assert {(g.residence, g.protection, g.subjects) for g in summary.groups} == {
        ("US-CA", Protection.UNSEALED, 600),
        ("DE", Protection.UNSEALED, 1),
        (UNKNOWN_RESIDENCE, Protection.UNSEALED, 1),
        ("US-TX", Protection.SEALED_SAFE_KEY, 1),
    }
    assert summary.information_types == ("pd:Contact",)
    plain = {a.regime.code: a.subjects for a in applicable_regimes(summary)}
    assert plain == {"ftc-safeguards": 602, "gdpr": 1, "us-ca": 600}  # Texas: safe key
    careful = {a.regime.code: a.subjects for a in applicable_regimes_conservatively(summary)}
    assert careful["ftc-safeguards"] == 602  # counted once, not twice
    assert careful["gdpr"] == 2 and careful["us-ca"] == 601 and careful["us-ny"] == 1


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        ("", T0, T0 + timedelta(days=1)),
        ("acme", T0, T0),
        ("acme", T0 + timedelta(days=1), T0),
        ("acme", T0.replace(tzinfo=None), T0 + timedelta(days=1)),
        ("acme", T0, T0 + timedelta(days=4000)),
    ],
)
def test_a_bad_scope_is_refused(value: str, start: datetime, end: datetime) -> None:
    with pytest.raises(BadScope):
        Scope(ScopeKind.PARTNER, value, start, end)


def test_index_rows_are_plain_values() -> None:
    row = IndexRow(T0, "staff", "a", None, "s", "pd:Contact", "email", None, "identity", "e")
    assert row.sealed_by is None
