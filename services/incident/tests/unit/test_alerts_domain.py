"""Incidents raised automatically, as pure rules (SEC-4): which risk signals are security
incidents and which are fraud screening, each cause's occurrence and dedupe key, and the
decision that keeps a burst of one cause to one open incident."""

from __future__ import annotations

import uuid

import pytest

from expensura_events.catalog.incident_response import IncidentSource
from expensura_events.catalog.loans_risk import RiskSignalKind
from expensura_events.catalog.platform import ForgedEventRejected
from expensura_events.vocabulary import ActorKind
from expensura_incident.alerts.domain import (
    SCREENING_SIGNALS,
    SECURITY_SIGNALS,
    AlreadySeen,
    Attach,
    Cause,
    NothingBroken,
    Raise,
    broken_log_cause,
    decide,
    forged_record_cause,
    risk_signal_cause,
)

pytestmark = pytest.mark.obligation("SEC-4")


def forged(
    offset: int = 7, *, topic: str | None = "expensura.identity.events"
) -> ForgedEventRejected:
    return ForgedEventRejected(
        claimed_source="identity",
        topic=topic,
        partition=None if topic is None else 3,
        offset=None if topic is None else offset,
        rejected_event_id=uuid.uuid4(),
        claimed_type="identity.ContactDetailsCorrected",
        reason="signature",
        projection="notification-contacts",
    )


def test_account_takeover_and_device_farms_are_incidents_the_rest_is_fraud_screening() -> None:
    assert set(SECURITY_SIGNALS) == {
        RiskSignalKind.PAYOUT_ACCOUNT_CHANGED,
        RiskSignalKind.DEVICE_ON_MANY_ACCOUNTS,
    }
    assert {
        RiskSignalKind.DEVICE_VELOCITY,
        RiskSignalKind.CARD_VELOCITY,
        RiskSignalKind.SUBJECT_VELOCITY,
        RiskSignalKind.UNVERIFIED_DEVICE_OWNER,
    } == SCREENING_SIGNALS
    for kind in SCREENING_SIGNALS:
        assert risk_signal_cause(kind, uuid.uuid4()) is None


def test_a_security_signal_is_keyed_by_its_kind_and_is_one_occurrence_per_event() -> None:
    e1, e2 = uuid.uuid4(), uuid.uuid4()
    first = risk_signal_cause(RiskSignalKind.PAYOUT_ACCOUNT_CHANGED, e1)
    second = risk_signal_cause(RiskSignalKind.PAYOUT_ACCOUNT_CHANGED, e2)
    other = risk_signal_cause(RiskSignalKind.DEVICE_ON_MANY_ACCOUNTS, e1)
    assert first is not None and second is not None and other is not None
    assert first.key == second.key != other.key
    assert first.occurrence != second.occurrence
    assert first == risk_signal_cause(RiskSignalKind.PAYOUT_ACCOUNT_CHANGED, e1)  # redelivered
    assert first.source is IncidentSource.RISK_SIGNAL
    assert first.actor.kind is ActorKind.SYSTEM and first.actor.id == "system:risk-signal"


def test_a_forged_record_is_one_occurrence_whoever_refused_it_keyed_by_the_attacked_topic() -> None:
    seen_by_incident = forged(7)
    seen_by_loans = seen_by_incident.model_copy(update={"projection": "verified-subjects"})
    a, b = forged_record_cause(seen_by_incident), forged_record_cause(seen_by_loans)
    assert a.occurrence == b.occurrence == "record:expensura.identity.events/3/7"
    later = forged_record_cause(forged(8))
    assert later.key == a.key == "forged-event:identity" and later.occurrence != a.occurrence
    from_feed = forged_record_cause(forged(topic=None))
    assert from_feed.key == a.key and from_feed.occurrence.startswith("record:identity/")
    assert a.actor.id == "system:forged-event"
    assert "signature" in a.summary and "ContactDetailsCorrected" not in a.summary


def test_a_broken_log_is_keyed_by_its_service_and_one_finding_is_one_occurrence() -> None:
    chain = broken_log_cause("loans", 1042, False)
    again = broken_log_cause("loans", 1042, False)
    rewrite = broken_log_cause("loans", None, True)
    assert chain == again
    assert chain.key == rewrite.key == "log-verify-failed:loans"
    assert chain.occurrence != rewrite.occurrence
    assert broken_log_cause("identity", 1042, False).key != chain.key
    assert "sequence 1042" in chain.summary and "rewritten" in rewrite.summary
    assert chain.actor.id == "system:log-verify-failed"
    with pytest.raises(NothingBroken):
        broken_log_cause("loans", None, False)


def test_seen_before_does_nothing_an_open_incident_takes_the_rest_else_one_is_raised() -> None:
    earlier, current = uuid.uuid4(), uuid.uuid4()
    assert decide(seen_in=earlier, open_for_key=current) == AlreadySeen(earlier)
    assert decide(seen_in=None, open_for_key=current) == Attach(current)
    assert decide(seen_in=None, open_for_key=None) == Raise()


def test_a_burst_of_one_kind_opens_one_incident_and_a_closed_one_gives_way_to_the_next() -> None:
    """The rule run over a burst, in memory: the store is a dict of occurrence -> incident
    and the set of open incidents per key."""
    seen: dict[str, uuid.UUID] = {}
    open_for: dict[str, uuid.UUID] = {}
    raised: list[uuid.UUID] = []

    def occur(cause: Cause) -> None:
        match decide(seen.get(cause.occurrence), open_for.get(cause.key)):
            case AlreadySeen():
                return
            case Attach(incident_id):
                seen[cause.occurrence] = incident_id
            case Raise():
                iid = uuid.uuid4()
                raised.append(iid)
                open_for[cause.key] = seen[cause.occurrence] = iid

    signals = [uuid.uuid4() for _ in range(300)]
    for event_id in signals + signals:  # a burst, then all of it redelivered
        cause = risk_signal_cause(RiskSignalKind.DEVICE_ON_MANY_ACCOUNTS, event_id)
        assert cause is not None
        occur(cause)
    assert len(raised) == 1 and len(seen) == 300
    takeover = risk_signal_cause(RiskSignalKind.PAYOUT_ACCOUNT_CHANGED, uuid.uuid4())
    assert takeover is not None
    occur(takeover)
    assert len(raised) == 2  # another kind, another incident
    del open_for[takeover.key]  # the team closed it
    again = risk_signal_cause(RiskSignalKind.PAYOUT_ACCOUNT_CHANGED, uuid.uuid4())
    assert again is not None
    occur(again)
    assert len(raised) == 3
