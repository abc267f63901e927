"""Fraud and risk signals in memory (USE-6): thresholds at their boundaries, windows,
minimised inputs, evidence without personal values, and the review hold."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from expensura_events.catalog.loans_risk import ReviewOutcome, RiskSignalKind, RiskSignalRaised
from expensura_events.obligations import enforced_by
from expensura_events.registry import personal_fields
from expensura_events.vocabulary import DataCategory, Grade, StaffRole
from expensura_loans.risk.domain import (
    MAX_APPLICATIONS_PER_CARD,
    MAX_APPLICATIONS_PER_DEVICE,
    MAX_APPLICATIONS_PER_SUBJECT,
    MAX_SUBJECTS_PER_DEVICE,
    REVIEW_TRANSITIONS,
    SIGNAL_INPUTS,
    ApplicationSeen,
    DeviceRegistration,
    DisallowedInput,
    Disbursement,
    DisbursementAccountChange,
    InvalidReviewTransition,
    MissingInput,
    NotARiskAnalyst,
    NotPseudonymous,
    ReviewHold,
    ReviewState,
    RiskSignal,
    card_velocity,
    conclude,
    device_on_many_accounts,
    device_velocity,
    hold_for,
    inputs_for,
    needs_review,
    payout_account_changed,
    signal_raised,
    signals_before_payout,
    signals_for,
    subject_velocity,
    transition,
    unverified_device_owner,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
K = RiskSignalKind


def pseudonym(raw: str) -> str:
    """What the edge sends instead of a raw identifier."""
    return hashlib.sha256(b"test-key:" + raw.encode()).hexdigest()


RAW_DEVICE = "IMEI 356938035643809"
RAW_CARD = "4111111111111111"
DEVICE = pseudonym(RAW_DEVICE)
OTHER_DEVICE = pseudonym("IMEI 490154203237518")
CARD = pseudonym(RAW_CARD)


def card(n: int) -> str:
    return pseudonym(f"card-{n}")


def seen(
    subject: str = "subject-1",
    *,
    device: str = DEVICE,
    card_fingerprint: str | None = None,
    ago: timedelta = timedelta(0),
) -> ApplicationSeen:
    # Each application its own card unless told: one signal at a time.
    fingerprint = card_fingerprint or pseudonym(str(uuid.uuid4()))
    return ApplicationSeen(uuid.uuid4(), subject, device, fingerprint, NOW - ago)


def registration(
    subject: str, *, verified: bool, device: str = DEVICE, ago: timedelta = timedelta(days=1)
) -> DeviceRegistration:
    return DeviceRegistration(device, subject, verified, NOW - ago)


def fired(signals: tuple[RiskSignal, ...], kind: RiskSignalKind) -> RiskSignal | None:
    matching = [s for s in signals if s.kind is kind]
    assert len(matching) <= 1
    return matching[0] if matching else None


# --- velocity ------------------------------------------------------------------------------------


@pytest.mark.obligation("USE-6")
def test_more_applications_from_one_device_than_allowed_in_a_day_raise_a_signal() -> None:
    current = seen("subject-1")
    # Different people on one device: only the device is shared.
    at_limit = [
        seen(f"other-{i}", ago=timedelta(hours=i)) for i in range(1, MAX_APPLICATIONS_PER_DEVICE)
    ]
    assert fired(signals_for(current, applications=at_limit), K.DEVICE_VELOCITY) is None

    above = [*at_limit, seen("other-x", ago=timedelta(hours=23))]
    signal = fired(signals_for(current, applications=above), K.DEVICE_VELOCITY)
    assert signal is not None
    assert signal.subject_id == "subject-1"
    assert signal.device_id == DEVICE
    assert signal.evidence == {"applications": MAX_APPLICATIONS_PER_DEVICE + 1, "window_hours": 24}


@pytest.mark.obligation("USE-6")
def test_more_applications_with_one_card_than_allowed_in_a_day_raise_a_signal() -> None:
    current = seen("subject-1", card_fingerprint=CARD)
    at_limit = [
        seen(f"other-{i}", device=pseudonym(f"device-{i}"), card_fingerprint=CARD)
        for i in range(1, MAX_APPLICATIONS_PER_CARD)
    ]
    assert fired(signals_for(current, applications=at_limit), K.CARD_VELOCITY) is None

    above = [*at_limit, seen("other-x", device=OTHER_DEVICE, card_fingerprint=CARD)]
    signal = fired(signals_for(current, applications=above), K.CARD_VELOCITY)
    assert signal is not None
    assert signal.card_fingerprint == CARD and signal.device_id is None
    assert signal.evidence == {"applications": MAX_APPLICATIONS_PER_CARD + 1, "window_hours": 24}


@pytest.mark.obligation("USE-6")
def test_more_applications_by_one_person_than_allowed_in_a_day_raise_a_signal() -> None:
    current = seen("subject-1")
    at_limit = [
        seen("subject-1", device=pseudonym(f"device-{i}"))
        for i in range(1, MAX_APPLICATIONS_PER_SUBJECT)
    ]
    assert fired(signals_for(current, applications=at_limit), K.SUBJECT_VELOCITY) is None

    above = [*at_limit, seen("subject-1", device=OTHER_DEVICE)]
    signal = fired(signals_for(current, applications=above), K.SUBJECT_VELOCITY)
    assert signal is not None
    assert signal.evidence["applications"] == MAX_APPLICATIONS_PER_SUBJECT + 1
    assert signal.device_id is None and signal.card_fingerprint is None


@pytest.mark.obligation("USE-6")
def test_the_velocity_window_excludes_applications_24_hours_old_or_more() -> None:
    current = seen("subject-1")
    recent = [
        seen("subject-1", ago=timedelta(hours=1)) for _ in range(MAX_APPLICATIONS_PER_SUBJECT - 1)
    ]
    old = [seen("subject-1", ago=timedelta(hours=24)), seen("subject-1", ago=timedelta(days=3))]
    assert fired(signals_for(current, applications=recent + old), K.SUBJECT_VELOCITY) is None

    just_inside = seen("subject-1", ago=timedelta(hours=24) - timedelta(seconds=1))
    signals = signals_for(current, applications=[*recent, *old, just_inside])
    assert fired(signals, K.SUBJECT_VELOCITY) is not None


def test_the_current_application_counts_once_and_later_ones_not_at_all() -> None:
    current = seen("subject-1")
    later = [seen("subject-1", ago=-timedelta(hours=1)) for _ in range(5)]
    others = [seen("subject-1") for _ in range(MAX_APPLICATIONS_PER_SUBJECT - 1)]
    # The history may already hold the application being checked.
    history = [current, current, *others, *later]
    assert fired(signals_for(current, applications=history), K.SUBJECT_VELOCITY) is None


# --- a device on many accounts -------------------------------------------------------------------


@pytest.mark.obligation("USE-6")
def test_a_device_seen_on_more_accounts_than_allowed_in_30_days_raises_a_signal() -> None:
    current = seen("subject-1", ago=timedelta(0))
    # Applications and registrations both count; the same person twice counts once.
    others = [seen("subject-2", ago=timedelta(days=10)), seen("subject-2", ago=timedelta(days=9))]
    regs = [
        registration(f"subject-{i}", verified=True) for i in range(3, MAX_SUBJECTS_PER_DEVICE + 1)
    ]
    assert len({"subject-1", "subject-2"} | {r.subject_id for r in regs}) == MAX_SUBJECTS_PER_DEVICE
    assert (
        fired(
            signals_for(current, applications=others, registrations=regs), K.DEVICE_ON_MANY_ACCOUNTS
        )
        is None
    )

    one_more = registration("subject-new", verified=True, ago=timedelta(days=29))
    signal = fired(
        signals_for(current, applications=others, registrations=[*regs, one_more]),
        K.DEVICE_ON_MANY_ACCOUNTS,
    )
    assert signal is not None
    assert signal.evidence == {"subjects": MAX_SUBJECTS_PER_DEVICE + 1, "window_days": 30}
    assert signal.device_id == DEVICE


@pytest.mark.obligation("USE-6")
def test_accounts_seen_on_the_device_30_days_ago_or_more_or_on_another_device_do_not_count() -> (
    None
):
    current = seen("subject-1")
    regs = [
        registration(f"subject-{i}", verified=True) for i in range(2, MAX_SUBJECTS_PER_DEVICE + 1)
    ]
    stale = [
        registration("subject-old", verified=True, ago=timedelta(days=30)),
        registration("subject-older", verified=True, ago=timedelta(days=90)),
        registration("subject-elsewhere", verified=True, device=OTHER_DEVICE),
    ]
    signals = signals_for(current, registrations=[*regs, *stale])
    assert fired(signals, K.DEVICE_ON_MANY_ACCOUNTS) is None


# --- payout account changed ----------------------------------------------------------------------

LOAN = uuid.uuid4()
PAYOUT = Disbursement(LOAN, "subject-1", NOW)


def change(ago: timedelta, loan: uuid.UUID = LOAN) -> DisbursementAccountChange:
    return DisbursementAccountChange(loan, "subject-1", NOW - ago)


@pytest.mark.obligation("USE-6")
def test_a_payout_account_changed_less_than_72_hours_before_the_payout_raises_a_signal() -> None:
    assert signals_before_payout(PAYOUT, [change(timedelta(hours=72))]) == ()
    just_inside = change(timedelta(hours=72) - timedelta(minutes=1))
    (signal,) = signals_before_payout(PAYOUT, [change(timedelta(days=10)), just_inside])
    assert signal.kind is K.PAYOUT_ACCOUNT_CHANGED
    assert signal.subject_id == "subject-1"
    assert signal.evidence == {"loan_id": str(LOAN), "hours_before_payout": 71, "window_hours": 72}


@pytest.mark.obligation("USE-6")
def test_only_this_loan_s_changes_made_before_the_payout_count() -> None:
    other_loan = change(timedelta(hours=1), loan=uuid.uuid4())
    after_payout = change(-timedelta(hours=1))
    assert signals_before_payout(PAYOUT, [other_loan, after_payout]) == ()


def test_the_latest_change_gives_the_hours_before_payout() -> None:
    (signal,) = signals_before_payout(
        PAYOUT, [change(timedelta(hours=50)), change(timedelta(hours=2))]
    )
    assert signal.evidence["hours_before_payout"] == 2


# --- unverified device owner ---------------------------------------------------------------------


@pytest.mark.obligation("USE-6")
def test_an_application_from_a_registered_device_without_a_verified_owner_raises_a_signal() -> None:
    current = seen("subject-1")
    signal = fired(
        signals_for(current, registrations=[registration("subject-1", verified=False)]),
        K.UNVERIFIED_DEVICE_OWNER,
    )
    assert signal is not None and signal.device_id == DEVICE
    assert signal.evidence == {"registrations": 1}
    verified = [registration("subject-1", verified=True)]
    assert fired(signals_for(current, registrations=verified), K.UNVERIFIED_DEVICE_OWNER) is None


@pytest.mark.parametrize(
    ("registrations", "fires"),
    [
        ([], False),  # unregistered: not this signal's concern
        ([registration("s", verified=False, device=OTHER_DEVICE)], False),
        # The latest registration before the application says who owns the device now.
        (
            [
                registration("s", verified=True, ago=timedelta(days=5)),
                registration("t", verified=False, ago=timedelta(days=1)),
            ],
            True,
        ),
        (
            [
                registration("s", verified=False, ago=timedelta(days=5)),
                registration("t", verified=True, ago=timedelta(days=1)),
            ],
            False,
        ),
        # Registered after the application: not what it was applied from.
        ([registration("s", verified=False, ago=-timedelta(hours=1))], False),
    ],
)
def test_the_owner_is_judged_by_the_latest_registration_before_the_application(
    registrations: list[DeviceRegistration], fires: bool
) -> None:
    signals = signals_for(seen("subject-1"), registrations=registrations)
    assert (fired(signals, K.UNVERIFIED_DEVICE_OWNER) is not None) is fires


# --- minimised inputs ----------------------------------------------------------------------------

SOURCE_TYPES: dict[str, type[Any]] = {
    "application": ApplicationSeen,
    "registration": DeviceRegistration,
    "account_change": DisbursementAccountChange,
    "disbursement": Disbursement,
}
ALL_PATHS = {
    f"{source}.{f}" for source, cls in SOURCE_TYPES.items() for f in cls.__dataclass_fields__
}


def run(kind: RiskSignalKind, extra: dict[str, Any] | None = None) -> RiskSignal | None:
    """Run one rule on valid inputs, with `extra` added to the first record of its source."""
    app = inputs_for(kind, seen("subject-1"))
    reg = inputs_for(kind, registration("subject-2", verified=False))
    payout = inputs_for(kind, PAYOUT)
    chg = inputs_for(kind, change(timedelta(hours=1)))
    by_source = {
        "application": app,
        "registration": reg,
        "disbursement": payout,
        "account_change": chg,
    }
    for path, value in (extra or {}).items():
        source, _, name = path.partition(".")
        by_source[source][name] = value
    rules: dict[RiskSignalKind, Callable[[], RiskSignal | None]] = {
        K.DEVICE_VELOCITY: lambda: device_velocity(app, []),
        K.CARD_VELOCITY: lambda: card_velocity(app, []),
        K.SUBJECT_VELOCITY: lambda: subject_velocity(app, []),
        K.DEVICE_ON_MANY_ACCOUNTS: lambda: device_on_many_accounts(app, [], [reg]),
        K.PAYOUT_ACCOUNT_CHANGED: lambda: payout_account_changed(payout, [chg]),
        K.UNVERIFIED_DEVICE_OWNER: lambda: unverified_device_owner(app, [reg]),
    }
    return rules[kind]()


def _sources_read(kind: RiskSignalKind) -> set[str]:
    return {p.partition(".")[0] for p in SIGNAL_INPUTS[kind]}


OUTSIDE = [
    (kind, path)
    for kind in RiskSignalKind
    for path in sorted(ALL_PATHS - SIGNAL_INPUTS[kind])
    if path.partition(".")[0] in _sources_read(kind)
]


@pytest.mark.obligation("USE-6")
def test_every_signal_declares_its_inputs_and_only_fields_that_exist() -> None:
    assert set(SIGNAL_INPUTS) == set(RiskSignalKind)
    for kind, paths in SIGNAL_INPUTS.items():
        assert paths <= ALL_PATHS, kind
    # Minimisation: only the card's signal reads the card.
    assert [k for k, p in SIGNAL_INPUTS.items() if "application.card_fingerprint" in p] == [
        K.CARD_VELOCITY
    ]


@pytest.mark.obligation("USE-6")
@pytest.mark.parametrize(("kind", "path"), OUTSIDE, ids=[f"{k.value}:{p}" for k, p in OUTSIDE])
def test_a_field_outside_a_signal_s_declared_inputs_makes_it_fail(
    kind: RiskSignalKind, path: str
) -> None:
    run(kind)  # the declared inputs alone are fine
    with pytest.raises(DisallowedInput) as refused:
        run(kind, {path: "anything"})
    assert refused.value.paths == [path]
    assert refused.value.kind is kind


def test_the_inputs_given_to_a_signal_are_exactly_its_declared_ones() -> None:
    for kind in RiskSignalKind:
        for source, cls in SOURCE_TYPES.items():
            declared = {
                p.partition(".")[2] for p in SIGNAL_INPUTS[kind] if p.startswith(f"{source}.")
            }
            item = {
                "application": seen(),
                "registration": registration("s", verified=True),
                "account_change": change(timedelta(hours=1)),
                "disbursement": PAYOUT,
            }[source]
            assert isinstance(item, cls)
            assert set(inputs_for(kind, item)) == declared


def test_a_missing_input_is_refused_rather_than_guessed() -> None:
    app = inputs_for(K.DEVICE_VELOCITY, seen())
    del app["at"]
    with pytest.raises(MissingInput):
        device_velocity(app, [])


@pytest.mark.parametrize(
    "raw", [RAW_DEVICE, "6D92078A-8246-4BA4-AE5B-76104861E7DC", RAW_CARD, DEVICE.upper(), ""]
)
def test_a_raw_identifier_is_refused_where_a_hash_belongs(raw: str) -> None:
    with pytest.raises(NotPseudonymous):
        ApplicationSeen(uuid.uuid4(), "s", raw, CARD, NOW)
    with pytest.raises(NotPseudonymous):
        ApplicationSeen(uuid.uuid4(), "s", DEVICE, raw, NOW)
    with pytest.raises(NotPseudonymous):
        DeviceRegistration(raw, "s", True, NOW)


def test_times_without_a_time_zone_are_refused() -> None:
    with pytest.raises(ValueError):
        Disbursement(LOAN, "s", datetime(2026, 11, 26))


# --- evidence ------------------------------------------------------------------------------------


def every_signal() -> tuple[RiskSignal, ...]:
    """One scenario in which all six signals fire."""
    current = seen("subject-1", card_fingerprint=CARD)
    others = [
        seen(f"neighbour-{i}", card_fingerprint=CARD, ago=timedelta(hours=i)) for i in range(1, 5)
    ]
    mine = [seen("subject-1", device=OTHER_DEVICE, ago=timedelta(hours=i)) for i in range(1, 4)]
    regs = [registration("subject-1", verified=False)]
    signals = signals_for(current, applications=[*others, *mine], registrations=regs)
    signals += signals_before_payout(PAYOUT, [change(timedelta(hours=1))])
    assert {s.kind for s in signals} == set(RiskSignalKind)
    return signals


SUBJECTS = {"subject-1", *(f"neighbour-{i}" for i in range(1, 5))}


@pytest.mark.obligation("USE-6")
def test_evidence_never_holds_a_subject_id_an_identifier_or_a_raw_value() -> None:
    forbidden = SUBJECTS | {DEVICE, OTHER_DEVICE, CARD, RAW_DEVICE, RAW_CARD}
    for signal in every_signal():
        values = {str(v) for v in signal.evidence.values()} | set(signal.evidence)
        assert not values & forbidden, signal.kind
        assert not [v for v in values for f in forbidden if f in v], signal.kind
        assert all(isinstance(v, int) or v == str(LOAN) for v in signal.evidence.values())


@pytest.mark.obligation("USE-6")
def test_the_event_seals_the_pseudonymous_ids_and_keeps_counts_readable() -> None:
    marked = personal_fields(RiskSignalRaised)
    assert set(marked) == {"device_id", "card_fingerprint"}
    assert (marked["device_id"].category, marked["device_id"].grade) == (
        DataCategory.DEVICE_BASED,
        Grade.PERSONAL,
    )
    assert marked["card_fingerprint"].grade is Grade.PERSONAL
    application_id = uuid.uuid4()
    for signal in every_signal():
        event = signal_raised(application_id, signal)
        unsealed = event.model_dump(mode="json", exclude=set(marked))
        text = repr(unsealed)
        assert not [v for v in [*SUBJECTS, DEVICE, CARD, RAW_DEVICE, RAW_CARD] if v in text]
        assert event.kind is signal.kind


# --- the review ----------------------------------------------------------------------------------


@pytest.mark.obligation("USE-6")
def test_any_signal_holds_the_application_for_review_and_none_lets_it_pass() -> None:
    assert needs_review([]) is False
    assert hold_for(uuid.uuid4(), []) is None
    one = RiskSignal(K.SUBJECT_VELOCITY, "subject-1", {"applications": 4})
    assert needs_review([one]) is True

    application_id = uuid.uuid4()
    held = hold_for(application_id, [one, *every_signal()])
    assert held is not None
    hold, event = held
    assert hold.state is ReviewState.OPEN
    assert sorted(hold.kinds) == sorted(RiskSignalKind)  # each kind once
    assert event.application_id == application_id and event.kinds == list(hold.kinds)


@pytest.mark.obligation("USE-6")
@pytest.mark.parametrize("outcome", list(ReviewOutcome))
def test_a_risk_analyst_concludes_an_open_review_once(outcome: ReviewOutcome) -> None:
    hold = ReviewHold(uuid.uuid4(), (K.CARD_VELOCITY,))
    concluded, event = conclude(
        hold, outcome, reviewer_staff_id="staff-7", reviewer_role=StaffRole.RISK_ANALYST
    )
    assert concluded.state.value == outcome.value
    assert (event.application_id, event.outcome, event.reviewer_staff_id) == (
        hold.application_id,
        outcome,
        "staff-7",
    )
    for again in ReviewOutcome:
        with pytest.raises(InvalidReviewTransition):
            conclude(
                concluded, again, reviewer_staff_id="staff-8", reviewer_role=StaffRole.RISK_ANALYST
            )


@pytest.mark.obligation("USE-6")
@pytest.mark.parametrize("role", [r for r in StaffRole if r is not StaffRole.RISK_ANALYST])
def test_only_a_risk_analyst_concludes_a_review(role: StaffRole) -> None:
    hold = ReviewHold(uuid.uuid4(), (K.CARD_VELOCITY,))
    with pytest.raises(NotARiskAnalyst):
        conclude(hold, ReviewOutcome.CLEARED, reviewer_staff_id="staff-1", reviewer_role=role)


@pytest.mark.obligation("USE-6")
def test_the_declared_transitions_are_open_to_a_conclusion_and_nothing_else() -> None:
    allowed = {(a, b) for a, targets in REVIEW_TRANSITIONS.items() for b in targets}
    assert allowed == {
        (ReviewState.OPEN, ReviewState.CLEARED),
        (ReviewState.OPEN, ReviewState.CONFIRMED_FRAUD),
    }
    for a in ReviewState:
        for b in ReviewState:
            if (a, b) in allowed:
                assert transition(a, b) is b
            else:
                with pytest.raises(InvalidReviewTransition):
                    transition(a, b)


def test_a_hold_without_a_signal_cannot_exist() -> None:
    with pytest.raises(ValueError):
        ReviewHold(uuid.uuid4(), ())


def test_the_rules_are_marked_as_where_use_6_is_enforced() -> None:
    where = {e.where for e in enforced_by().get("USE-6", [])}
    assert {
        "expensura_loans.risk.domain:signals_for",
        "expensura_loans.risk.domain:signals_before_payout",
        "expensura_loans.risk.domain:hold_for",
    } <= where
