"""Data-subject rights in memory: the cancellation state machine (every legal and illegal
move), erasure certificates, and the export document."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from expensura_events.topology import SERVICES
from expensura_identity.rights.domain import (
    ERASURE_PARTICIPANTS,
    OPEN_STATES,
    TRANSITIONS,
    CancellationAction,
    CancellationState,
    ExportIncomplete,
    HeldRecords,
    IllegalTransition,
    can_withdraw,
    cancellation_stream,
    chase,
    cooling_off_until,
    erasure_overdue,
    export_document,
    export_stream,
    held_records,
    missing_confirmations,
    render_html,
    render_json,
    transition,
)

S = CancellationState
A = CancellationAction
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

LEGAL = {
    (S.COOLING_OFF, A.WITHDRAW): S.WITHDRAWN,
    (S.COOLING_OFF, A.STOP_PROCESSING): S.PROCESSING_STOPPED,
    (S.PROCESSING_STOPPED, A.REQUEST_ERASURE): S.ERASING,
    (S.ERASING, A.ASK_AGAIN): S.ERASING,
    (S.ERASING, A.ESCALATE): S.ESCALATED,
    (S.ERASING, A.CERTIFY): S.CERTIFIED,
    (S.ESCALATED, A.CERTIFY): S.CERTIFIED,
}


@pytest.mark.obligation("RUL-2", "RGT-3")
def test_the_table_is_exactly_the_policys_way_from_request_to_certificate() -> None:
    assert dict(TRANSITIONS) == LEGAL


@pytest.mark.obligation("RUL-2", "RGT-3")
@pytest.mark.parametrize(("state", "action"), list(LEGAL))
def test_every_legal_move(state: CancellationState, action: CancellationAction) -> None:
    assert transition(state, action) is LEGAL[(state, action)]


@pytest.mark.obligation("RUL-2", "RGT-3")
@pytest.mark.parametrize(("state", "action"), [(s, a) for s in S for a in A if (s, a) not in LEGAL])
def test_every_illegal_move_is_refused(
    state: CancellationState, action: CancellationAction
) -> None:
    with pytest.raises(IllegalTransition) as refused:
        transition(state, action)
    assert (refused.value.state, refused.value.action) == (state, action)


@pytest.mark.obligation("RUL-2")
def test_withdrawn_and_certified_are_final_and_only_cooling_off_can_be_withdrawn() -> None:
    for final in (S.WITHDRAWN, S.CERTIFIED):
        assert not [a for a in A if (final, a) in LEGAL]
    assert [s for s in S if can_withdraw(s)] == [S.COOLING_OFF]
    # A subject has one open request at a time: every state but the final ones is open.
    assert set(S) - {S.WITHDRAWN, S.CERTIFIED} == OPEN_STATES


@pytest.mark.obligation("RUL-2")
def test_every_state_is_reachable_from_cooling_off() -> None:
    reached, frontier = {S.COOLING_OFF}, [S.COOLING_OFF]
    while frontier:
        state = frontier.pop()
        for (start, _), to in LEGAL.items():
            if start is state and to not in reached:
                reached.add(to)
                frontier.append(to)
    assert reached == set(S)


@pytest.mark.obligation("RGT-3")
def test_stores_are_asked_again_until_the_last_attempt_then_a_person_takes_over() -> None:
    assert [chase(n, 5) for n in (1, 4)] == [A.ASK_AGAIN, A.ASK_AGAIN]
    assert [chase(n, 5) for n in (5, 6)] == [A.ESCALATE, A.ESCALATE]


def test_erasure_is_overdue_only_after_the_retry_interval() -> None:
    assert not erasure_overdue(None, NOW, 60)
    assert not erasure_overdue(NOW - timedelta(seconds=60), NOW, 60)
    assert erasure_overdue(NOW - timedelta(seconds=61), NOW, 60)
    assert cooling_off_until(NOW, 3600) == NOW + timedelta(hours=1)


@pytest.mark.obligation("RGT-3")
def test_a_certificate_needs_every_store_of_the_platform() -> None:
    assert set(ERASURE_PARTICIPANTS) == {s.name.value for s in SERVICES}
    assert missing_confirmations([]) == list(ERASURE_PARTICIPANTS)
    assert missing_confirmations([*ERASURE_PARTICIPANTS, "someone-else"]) == []
    assert missing_confirmations(ERASURE_PARTICIPANTS[1:]) == [ERASURE_PARTICIPANTS[0]]


def _parts() -> dict[str, object]:
    return {
        name: {
            "events": [
                {
                    "occurred_at": "2026-11-26T12:00:00+00:00",
                    "event_type": "identity.AccountOpened",
                    "purpose": "account-management",
                    "payload": {"email": "<script>alert(1)</script>@example.com"},
                }
            ],
            "read_models": {"known-subjects": {"subjects": [{"subject_id": "s"}]}},
        }
        for name in ERASURE_PARTICIPANTS
    }


@pytest.mark.obligation("RGT-1")
def test_the_export_holds_every_store_or_is_not_delivered() -> None:
    export_id = uuid.uuid4()
    document = export_document(export_id, "s", NOW, _parts())
    assert document["export_id"] == str(export_id) and document["subject_id"] == "s"
    assert document["format"] == "expensura-subject-export/1"
    assert list(document["services"]) == list(ERASURE_PARTICIPANTS)
    assert json.loads(render_json(document)) == document
    partial = {k: v for k, v in _parts().items() if k != "loans"}
    with pytest.raises(ExportIncomplete) as incomplete:
        export_document(export_id, "s", NOW, partial)
    assert incomplete.value.missing == ["loans"]


@pytest.mark.obligation("RGT-1")
def test_the_readable_export_escapes_what_the_data_says() -> None:
    page = render_html(export_document(uuid.uuid4(), "s", NOW, _parts()))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<h2>") == len(ERASURE_PARTICIPANTS)
    assert "identity.AccountOpened" in page and "known-subjects" in page


def test_requests_and_exports_have_streams_of_their_own() -> None:
    request = uuid.uuid4()
    assert cancellation_stream(request) == f"cancellation-{request}"
    assert export_stream(request) == f"export-{request}"


# --- what the certificate says of records kept under a legal hold (RUL-2, USE-3) -----------

LOANS_RETAINED = {
    "loans": [
        "bsa-account-records: 3 log records, held until 2031-06-01",
        "reg-b-applications: 2 log records, held until 2028-02-05",
    ],
    "consent": [],
}


@pytest.mark.obligation("RUL-2", "USE-3")
def test_the_certificate_shows_each_held_class_held_until_its_end() -> None:
    shown = held_records(LOANS_RETAINED, {})
    assert [(h.service, h.hold, h.records, h.status) for h in shown] == [
        ("loans", "bsa-account-records", "3 log records", "held until 2031-06-01"),
        ("loans", "reg-b-applications", "2 log records", "held until 2028-02-05"),
    ]
    assert shown[1].held_until == date(2028, 2, 5) and shown[1].erased_at is None


@pytest.mark.obligation("RUL-2", "USE-3")
def test_a_hold_the_store_ended_shows_as_erased_and_only_that_one() -> None:
    ended_at = datetime(2028, 2, 5, 1, tzinfo=UTC)
    shown = held_records(
        LOANS_RETAINED,
        {
            ("loans", "reg-b-applications"): ended_at,
            ("incident", "bsa-account-records"): ended_at,  # another store's hold: not loans'
        },
    )
    assert [h.status for h in shown] == ["held until 2031-06-01", "erased"]
    assert shown[1].erased_at == ended_at


def test_an_entry_without_an_end_date_or_in_another_form_is_shown_as_written() -> None:
    shown = held_records({"incident": ["loan-records: 1 log records", "something else"]}, {})
    assert shown == (
        HeldRecords("incident", "loan-records", "1 log records", None),
        HeldRecords("incident", "something else", "something else", None),
    )
    assert [h.status for h in shown] == ["held", "held"]
