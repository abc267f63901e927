"""Notification regimes in memory: which regimes a blast radius falls under (the Safeguards
Rule's 500 consumers, sealed values with a safe key left out, a taken key counted), each
regime's deadline from discovery (30 days for the FTC, 72 hours under GDPR) and the alert
at 75 % of the time, and the FTC report's draft."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from expensura_incident.regimes.domain import (
    FTC_SAFEGUARDS,
    GDPR,
    REGIMES,
    STATE_LAWS,
    Exposed,
    Exposure,
    NotReportable,
    Protection,
    alert_due,
    applicable_regimes,
    deadline,
    draft_ftc_report,
    residents_deadline,
)

pytestmark = pytest.mark.obligation("SEC-5")

DISCOVERED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
PLAIN = Protection.UNSEALED
KEY_TAKEN = Protection.SEALED_KEY_TAKEN
SAFE = Protection.SEALED_SAFE_KEY
BY_CODE = {r.code: r for r in REGIMES}


def _codes(exposure: Exposure) -> set[str]:
    return {a.regime.code for a in applicable_regimes(exposure)}


def _ftc(exposure: Exposure) -> bool:
    return FTC_SAFEGUARDS.code in _codes(exposure)


def test_499_consumers_are_below_the_ftc_threshold_and_500_reach_it() -> None:
    assert not _ftc(Exposure((Exposed("US-OH", PLAIN, 499),)))
    assert _ftc(Exposure((Exposed("US-OH", PLAIN, 500),)))


def test_the_ftc_counts_consumers_across_every_residence() -> None:
    spread = Exposure((Exposed("US-OH", PLAIN, 250), Exposed("US-CA", PLAIN, 200)))
    assert not _ftc(spread)
    more = Exposure((*spread.groups, Exposed("DE", KEY_TAKEN, 50)))
    assert _ftc(more)


def test_values_sealed_with_a_safe_key_are_no_notification_event() -> None:
    sealed = Exposure((Exposed("US-OH", SAFE, 10_000),))
    assert applicable_regimes(sealed) == ()
    # 499 readable and thousands sealed under a safe key: still below the FTC threshold
    mixed = Exposure((Exposed("US-OH", PLAIN, 499), Exposed("US-OH", SAFE, 10_000)))
    assert not _ftc(mixed)


def test_values_sealed_under_a_taken_key_count_as_unencrypted() -> None:
    key_taken = Exposure((Exposed("US-OH", KEY_TAKEN, 500),))
    applicable = {a.regime.code: a for a in applicable_regimes(key_taken)}
    assert applicable[FTC_SAFEGUARDS.code].subjects == 500
    assert applicable[FTC_SAFEGUARDS.code].report_due
    assert _ftc(Exposure((Exposed("US-OH", PLAIN, 250), Exposed("US-OH", KEY_TAKEN, 250))))


def test_the_ftc_report_is_due_30_days_after_discovery() -> None:
    assert deadline(FTC_SAFEGUARDS, DISCOVERED) == datetime(2026, 12, 31, 9, 30, tzinfo=UTC)


def test_gdpr_applies_to_eea_residents_and_is_due_in_72_hours() -> None:
    one_german = Exposure((Exposed("DE", PLAIN, 1),))
    assert _codes(one_german) == {GDPR.code}
    assert _codes(Exposure((Exposed("NO", PLAIN, 1),))) == {GDPR.code}  # the EEA, not only the EU
    assert _codes(Exposure((Exposed("GB", PLAIN, 1),))) == set()  # not under this table
    assert _codes(Exposure((Exposed("DE", SAFE, 1),))) == set()
    assert deadline(GDPR, DISCOVERED) == DISCOVERED + timedelta(hours=72)
    assert deadline(GDPR, DISCOVERED) == datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


def test_the_alert_is_raised_once_75_percent_of_the_time_has_passed() -> None:
    # FTC: 30 days; 75 % is 22.5 days
    assert not alert_due(FTC_SAFEGUARDS, DISCOVERED, DISCOVERED + timedelta(days=22, hours=11))
    assert alert_due(FTC_SAFEGUARDS, DISCOVERED, DISCOVERED + timedelta(days=22, hours=12))
    assert alert_due(FTC_SAFEGUARDS, DISCOVERED, DISCOVERED + timedelta(days=31))  # overdue
    # GDPR: 72 hours; 75 % is 54 hours
    assert not alert_due(GDPR, DISCOVERED, DISCOVERED + timedelta(hours=53, minutes=59))
    assert alert_due(GDPR, DISCOVERED, DISCOVERED + timedelta(hours=54))


def test_a_regime_without_a_fixed_period_has_no_deadline_nor_alert() -> None:
    massachusetts = BY_CODE["us-ma"]
    assert deadline(massachusetts, DISCOVERED) is None
    assert not alert_due(massachusetts, DISCOVERED, DISCOVERED + timedelta(days=365))


def test_times_without_a_zone_are_refused() -> None:
    with pytest.raises(ValueError):
        deadline(GDPR, datetime(2026, 12, 1, 9))
    with pytest.raises(ValueError):
        alert_due(GDPR, DISCOVERED, datetime(2026, 12, 3, 9))


@pytest.mark.parametrize(
    ("code", "below", "at"),
    [("us-ca", 500, 501), ("us-fl", 499, 500), ("us-tx", 249, 250), ("us-wa", 500, 501)],
)
def test_a_state_attorney_general_is_told_from_the_state_threshold(
    code: str, below: int, at: int
) -> None:
    state = code.upper()  # "us-ca" is the regime of residence "US-CA"
    below_it = {
        a.regime.code: a for a in applicable_regimes(Exposure((Exposed(state, PLAIN, below),)))
    }
    # the residents are owed notices below the threshold; the attorney general is not told
    assert code in below_it and not below_it[code].report_due
    at_it = {a.regime.code: a for a in applicable_regimes(Exposure((Exposed(state, PLAIN, at),)))}
    assert at_it[code].report_due


def test_a_state_law_reaches_only_its_residents() -> None:
    texans = Exposure((Exposed("US-TX", PLAIN, 300),))
    assert _codes(texans) == {"us-tx"}
    assert deadline(BY_CODE["us-tx"], DISCOVERED) == DISCOVERED + timedelta(days=30)
    assert residents_deadline(BY_CODE["us-tx"], DISCOVERED) == DISCOVERED + timedelta(days=60)


def test_the_state_table_cites_each_law_and_marks_what_is_unverified() -> None:
    assert len(STATE_LAWS) >= 5
    fields = {"residents_within", "within", "threshold", "content"}
    for law in STATE_LAWS:
        assert law.citation and law.content and law.threshold >= 1
        assert law.residences is not None and len(law.residences) == 1
        assert set(law.unverified) <= fields
    assert len({law.code for law in REGIMES}) == len(REGIMES)


def test_the_ftc_draft_carries_the_six_required_items() -> None:
    exposure = Exposure(
        (
            Exposed("US-OH", PLAIN, 450),
            Exposed("US-CA", KEY_TAKEN, 150),
            Exposed("US-NY", SAFE, 99),
        ),
        information_types=("contact", "credit"),
        first_at=datetime(2026, 11, 20, 23, tzinfo=UTC),
        last_at=datetime(2026, 11, 27, 8, tzinfo=UTC),
    )
    draft = draft_ftc_report(
        exposure,
        discovered_at=DISCOVERED,
        institution_name="Expensura Lending",
        institution_contact="security-officer@expensura.example",
        description="A partner credential leaked; the partner pulled loan files for a week.",
    )
    assert draft.institution_name == "Expensura Lending"  # (1)
    assert draft.institution_contact
    assert draft.information_types == ("contact", "credit")  # (2)
    assert (draft.event_from, draft.event_to) == (date(2026, 11, 20), date(2026, 11, 27))  # (3)
    assert draft.consumers == 600  # (4): the safely sealed 99 are not counted
    assert draft.description  # (5)
    assert draft.law_enforcement_determination is False  # (6)
    assert draft.law_enforcement_contact is None
    assert draft.due_by == DISCOVERED + timedelta(days=30)


def test_no_ftc_draft_below_its_threshold() -> None:
    with pytest.raises(NotReportable):
        draft_ftc_report(
            Exposure((Exposed("US-OH", PLAIN, 499), Exposed("US-OH", SAFE, 1))),
            discovered_at=DISCOVERED,
            institution_name="Expensura Lending",
            institution_contact="security-officer@expensura.example",
            description="…",
        )
