"""The incident's regulator deadlines in memory (SEC-5): the regimes an exposure summary falls
under, each deadline from discovery, the alert from 75 % of the period until the report is
filed; a report filed once, only where one is due. And who is on the response team (SEC-4)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from expensura_incident.regimes.domain import Exposed, Exposure, Protection
from expensura_incident.response.domain import (
    IncidentIsClosed,
    IncidentState,
    NoReportDue,
    NotOnResponseTeam,
    Report,
    ReportAlreadyFiled,
    Source,
    check_filing,
    ensure_open,
    fold,
    regulator_deadlines,
    responder_role,
)

FOUND = datetime(2026, 12, 1, 9, tzinfo=UTC)


def exposure(*groups: tuple[str, Protection, int]) -> Exposure:
    return Exposure(groups=tuple(Exposed(*g) for g in groups))


@pytest.mark.obligation("SEC-5")
def test_each_regime_gets_its_deadline_from_discovery() -> None:
    found = exposure(("US-TX", Protection.UNSEALED, 500), ("DE", Protection.SEALED_KEY_TAKEN, 2))
    by_code = {d.regime.code: d for d in regulator_deadlines(found, FOUND, FOUND)}
    assert set(by_code) == {"ftc-safeguards", "gdpr", "us-tx"}
    assert by_code["ftc-safeguards"].due_by == FOUND + timedelta(days=30)
    assert by_code["gdpr"].due_by == FOUND + timedelta(hours=72)
    assert by_code["us-tx"].residents_due_by == FOUND + timedelta(days=60)
    assert by_code["ftc-safeguards"].subjects == 502 and by_code["gdpr"].subjects == 2


@pytest.mark.obligation("SEC-5")
def test_499_consumers_owe_the_ftc_nothing_and_500_owe_it_a_report() -> None:
    below = regulator_deadlines(exposure(("US-OH", Protection.UNSEALED, 499)), FOUND, FOUND)
    assert below == ()
    at = regulator_deadlines(exposure(("US-OH", Protection.UNSEALED, 500)), FOUND, FOUND)
    assert [(d.regime.code, d.report_due) for d in at] == [("ftc-safeguards", True)]


@pytest.mark.obligation("SEC-5")
def test_values_sealed_under_a_safe_key_make_no_deadline() -> None:
    safe = exposure(
        ("US-OH", Protection.SEALED_SAFE_KEY, 10_000), ("FR", Protection.SEALED_SAFE_KEY, 5)
    )
    assert regulator_deadlines(safe, FOUND, FOUND) == ()


@pytest.mark.obligation("SEC-5")
def test_the_alert_starts_at_75_percent_of_the_period_and_stops_once_filed() -> None:
    found = exposure(("US-OH", Protection.UNSEALED, 800))
    (before,) = regulator_deadlines(found, FOUND, FOUND + timedelta(days=22, hours=11))
    (at,) = regulator_deadlines(found, FOUND, FOUND + timedelta(days=22, hours=12))
    (filed,) = regulator_deadlines(found, FOUND, FOUND + timedelta(days=29), ["ftc-safeguards"])
    assert (before.alert, at.alert) == (False, True)
    assert filed.filed and not filed.alert


@pytest.mark.obligation("SEC-5")
def test_no_alert_without_a_report_due_or_a_fixed_period() -> None:
    # New York: any resident, no fixed period for its regulators; California: below its 501.
    found = exposure(("US-NY", Protection.UNSEALED, 3), ("US-CA", Protection.UNSEALED, 20))
    late = regulator_deadlines(found, FOUND, FOUND + timedelta(days=365))
    by_code = {d.regime.code: d for d in late}
    assert by_code["us-ny"].report_due and by_code["us-ny"].due_by is None
    assert not by_code["us-ca"].report_due and by_code["us-ca"].due_by is None
    assert not any(d.alert for d in late)


@pytest.mark.obligation("SEC-5")
def test_a_report_is_filed_once_and_only_where_one_is_due() -> None:
    found = exposure(("US-OH", Protection.UNSEALED, 500))
    check_filing(found, "ftc-safeguards", [])
    with pytest.raises(ReportAlreadyFiled):
        check_filing(found, "ftc-safeguards", ["ftc-safeguards"])
    with pytest.raises(NoReportDue):
        check_filing(found, "gdpr", [])
    with pytest.raises(NoReportDue):
        check_filing(None, "ftc-safeguards", [])


@pytest.mark.obligation("SEC-4")
def test_the_response_team_is_the_security_and_privacy_officers() -> None:
    assert responder_role({"security-officer", "privacy-officer"}) == "security-officer"
    assert responder_role({"privacy-officer", "customer-service"}) == "privacy-officer"
    for roles in ({"customer-service"}, {"risk-analyst", "administrator"}, set()):
        with pytest.raises(NotOnResponseTeam):
            responder_role(roles)


@pytest.mark.obligation("SEC-4")
def test_a_closed_incident_refuses_what_an_open_one_takes() -> None:
    report = Report(actor="staff:1", at=FOUND, source=Source.STAFF, summary="s")
    ensure_open(fold([report]))
    with pytest.raises(IncidentIsClosed):
        ensure_open(replace(fold([report]), state=IncidentState.CLOSED))
