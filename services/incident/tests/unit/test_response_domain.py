"""The incident response workflow in memory: the declared transitions, the actions each
state refuses, every action's actor and time, and the incident as the fold of its actions."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from expensura_incident.grading.domain import (
    Circumstances,
    Confidentiality,
    DataCategory,
    DataSet,
    EaseOfIdentification,
    Severity,
    assess,
)
from expensura_incident.response.domain import (
    TRANSITIONS,
    Action,
    ActionKind,
    ActionOutOfOrder,
    Analyse,
    Close,
    Contain,
    Containment,
    IllegalTransition,
    IncidentState,
    InvalidAction,
    NoIncident,
    Regrade,
    Remediate,
    Report,
    Source,
    Triage,
    VerisAction,
    apply,
    fold,
    transition,
)

pytestmark = pytest.mark.obligation("SEC-4")

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
OFFICER = "staff:7f1c"  # an opaque id, never a name
HIGH = assess(
    DataSet(DataCategory.FINANCIAL),
    EaseOfIdentification.MAXIMUM,
    Circumstances(Confidentiality.KNOWN_RECIPIENTS),
)
VERY_HIGH = assess(
    DataSet(DataCategory.FINANCIAL),
    EaseOfIdentification.MAXIMUM,
    Circumstances(Confidentiality.UNKNOWN_RECIPIENTS, malicious=True),
)


def _at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _whole_response() -> list[Action]:
    return [
        Report(
            actor="system:risk", at=_at(0), source=Source.RISK_SIGNAL, summary="partner pull spike"
        ),
        Triage(actor=OFFICER, at=_at(1), category=VerisAction.MISUSE, assessment=HIGH),
        Contain(
            actor=OFFICER,
            at=_at(2),
            measure=Containment.REVOKE_PARTNER_CREDENTIAL,
            target="cred-42",
        ),
        Contain(actor=OFFICER, at=_at(3), measure=Containment.ROTATE_KEY, target="key-9"),
        Regrade(actor=OFFICER, at=_at(4), assessment=VERY_HIGH),
        Analyse(actor=OFFICER, at=_at(20), root_cause="credential in a public repository"),
        Remediate(actor=OFFICER, at=_at(30), measure="secret scanning on partner onboarding"),
        Close(actor=OFFICER, at=_at(40)),
    ]


def test_the_whole_response_folds_into_a_closed_incident_with_its_timeline() -> None:
    actions = _whole_response()
    incident = fold(actions)
    assert incident.state is IncidentState.CLOSED
    assert incident.timeline == tuple(actions)
    assert [a.kind for a in incident.timeline] == [
        ActionKind.REPORT,
        ActionKind.TRIAGE,
        ActionKind.CONTAIN,
        ActionKind.CONTAIN,
        ActionKind.REGRADE,
        ActionKind.ANALYSE,
        ActionKind.REMEDIATE,
        ActionKind.CLOSE,
    ]
    assert incident.source is Source.RISK_SIGNAL
    assert incident.reported_by == "system:risk"
    assert incident.reported_at == T0
    assert incident.category is VerisAction.MISUSE
    assert incident.severity is Severity.VERY_HIGH  # the regrade replaced the triage's grade
    assert [c.measure for c in incident.containment] == [
        Containment.REVOKE_PARTNER_CREDENTIAL,
        Containment.ROTATE_KEY,
    ]
    assert [c.owner for c in incident.containment] == ["sharing-gateway", "keystore"]
    assert incident.root_cause == "credential in a public repository"
    assert incident.remediation == ("secret scanning on partner onboarding",)
    assert incident.closed_at == _at(40)
    assert not incident.open


def test_each_prefix_of_the_actions_is_the_state_the_incident_was_in() -> None:
    states = [fold(_whole_response()[: n + 1]).state for n in range(len(_whole_response()))]
    assert states == [
        IncidentState.REPORTED,
        IncidentState.TRIAGED,
        IncidentState.CONTAINED,
        IncidentState.CONTAINED,
        IncidentState.CONTAINED,
        IncidentState.ANALYSED,
        IncidentState.REMEDIATED,
        IncidentState.CLOSED,
    ]


def test_every_undeclared_move_is_refused() -> None:
    for state in (None, *IncidentState):
        for action in ActionKind:
            if (state, action) in TRANSITIONS:
                assert transition(state, action) is TRANSITIONS[(state, action)]
            else:
                with pytest.raises(IllegalTransition):
                    transition(state, action)


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (IncidentState.REPORTED, ActionKind.CONTAIN),  # contain before grading
        (IncidentState.TRIAGED, ActionKind.CLOSE),  # close without analysis
        (IncidentState.CONTAINED, ActionKind.REMEDIATE),  # remediate without a root cause
        (IncidentState.CLOSED, ActionKind.CONTAIN),  # nothing after closure
        (IncidentState.CLOSED, ActionKind.REPORT),
        (None, ActionKind.TRIAGE),  # nothing before a report
    ],
)
def test_skipping_a_step_is_illegal(state: IncidentState | None, action: ActionKind) -> None:
    with pytest.raises(IllegalTransition):
        transition(state, action)


def test_a_closed_incident_takes_no_more_actions() -> None:
    closed = fold(_whole_response())
    with pytest.raises(IllegalTransition):
        apply(closed, Regrade(actor=OFFICER, at=_at(50), assessment=HIGH))


def test_the_first_action_must_be_a_report() -> None:
    with pytest.raises(IllegalTransition):
        apply(None, Close(actor=OFFICER, at=T0))


def test_an_action_dated_before_the_latest_is_refused() -> None:
    reported = fold(_whole_response()[:2])
    with pytest.raises(ActionOutOfOrder):
        apply(
            reported,
            Contain(actor=OFFICER, at=_at(0.5), measure=Containment.ROTATE_KEY, target="key-9"),
        )


def test_every_action_has_an_actor_and_an_aware_time() -> None:
    with pytest.raises(InvalidAction):
        Close(actor=" ", at=T0)
    with pytest.raises(InvalidAction):
        Close(actor=OFFICER, at=datetime(2026, 12, 1, 9))  # naive: when, in which zone?
    with pytest.raises(InvalidAction):
        Analyse(actor=OFFICER, at=T0, root_cause="")
    with pytest.raises(InvalidAction):
        Contain(actor=OFFICER, at=T0, measure=Containment.END_STAFF_SESSIONS, target="")


def test_a_key_rotation_is_handed_to_an_operator_unless_identity_is_named() -> None:
    def rotate(owner: str = "") -> Contain:
        return Contain(
            actor=OFFICER, at=T0, measure=Containment.ROTATE_KEY, target="kid-1", owner=owner
        )

    assert rotate().owner == "keystore"  # by default: the operator's handoff
    assert rotate("identity").owner == "identity"  # its access-token signing keys
    with pytest.raises(InvalidAction, match="not sharing-gateway"):
        rotate("sharing-gateway")
    with pytest.raises(InvalidAction):
        Contain(
            actor=OFFICER,
            at=T0,
            measure=Containment.END_STAFF_SESSIONS,
            target="staff-1",
            owner="keystore",
        )
    staff = Contain(actor=OFFICER, at=T0, measure=Containment.END_STAFF_SESSIONS, target="s-1")
    assert staff.owner == "identity"


def test_actions_are_frozen() -> None:
    close = Close(actor=OFFICER, at=T0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        close.actor = "someone else"  # type: ignore[misc]


def test_no_actions_make_no_incident() -> None:
    with pytest.raises(NoIncident):
        fold([])
