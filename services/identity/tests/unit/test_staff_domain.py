"""Staff rules in memory: least privilege, the lock-out, the second factor, the customer
check before a look-up, and what a customer sees of staff reads."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from expensura_events.catalog.identity import SignedIn
from expensura_events.catalog.platform import PersonalDataAccessed
from expensura_events.contacts import Contact, ContactItem
from expensura_events.envelope import Actor, DomainEvent, EventEnvelope, new_event_id
from expensura_events.vocabulary import ActorKind, CollectionChannel, Purpose, StaffRole
from expensura_identity.staff.domain import (
    ENROLMENT_TRANSITIONS,
    MAX_FAILED_ATTEMPTS,
    RECOVERY_CODE,
    RECOVERY_CODES,
    ROLE_PURPOSES,
    STAFF_TRANSITIONS,
    Enrolment,
    EnrolmentAction,
    IllegalTransition,
    StaffAction,
    StaffState,
    access_log,
    check_second_factor,
    customer_confirmed,
    enrol,
    enrolment_of,
    hash_code,
    locks_out,
    new_recovery_codes,
    pseudonym,
    role_for,
    second_factor_refusal,
    staff_stream,
    state_of,
    step_usable,
    totp_step_of,
    transition,
)

NOW = datetime(2026, 11, 26, 12, 0, 10, tzinfo=UTC)
SECRET = pyotp.random_base32()


# --- least privilege (SEC-2) -----------------------------------------------------------------


@pytest.mark.obligation("SEC-2")
@pytest.mark.parametrize("role", list(StaffRole))
@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_role_may_use_personal_data_only_for_its_purposes(
    role: StaffRole, purpose: Purpose
) -> None:
    expected = role if purpose in ROLE_PURPOSES[role] else None
    assert role_for(frozenset({role.value}), purpose) is expected


@pytest.mark.obligation("SEC-2")
def test_administrators_read_no_customer_data_and_the_policy_names_every_role() -> None:
    assert set(ROLE_PURPOSES) == set(StaffRole)
    assert ROLE_PURPOSES[StaffRole.ADMINISTRATOR] == frozenset()
    assert all(role_for({StaffRole.ADMINISTRATOR.value}, p) is None for p in Purpose)
    assert role_for(set(), Purpose.CUSTOMER_CARE) is None
    assert role_for({"no-such-role"}, Purpose.SECURITY) is None


@pytest.mark.obligation("SEC-2")
def test_with_several_roles_the_one_that_allows_the_purpose_is_named() -> None:
    roles = {StaffRole.ADMINISTRATOR.value, StaffRole.RISK_ANALYST.value}
    assert role_for(roles, Purpose.CREDIT_ASSESSMENT) is StaffRole.RISK_ANALYST
    # Two roles allow it: the first in the roles' order is named, whatever order they came in.
    both = [StaffRole.SECURITY_OFFICER.value, StaffRole.RISK_ANALYST.value]
    assert role_for(both, Purpose.SECURITY) is StaffRole.RISK_ANALYST
    assert role_for(reversed(both), Purpose.SECURITY) is StaffRole.RISK_ANALYST


# --- the lock-out (SEC-2) ------------------------------------------------------------------------


@pytest.mark.obligation("SEC-2")
@pytest.mark.parametrize("failures", range(0, MAX_FAILED_ATTEMPTS + 3))
def test_the_account_locks_at_the_fifth_consecutive_failure(failures: int) -> None:
    assert MAX_FAILED_ATTEMPTS == 5
    assert locks_out(failures) is (failures >= 5)


@pytest.mark.obligation("SEC-2")
@pytest.mark.parametrize("state", list(StaffState))
@pytest.mark.parametrize("action", list(StaffAction))
def test_the_staff_lock_moves_only_as_its_table_says(
    state: StaffState, action: StaffAction
) -> None:
    legal = {
        (StaffState.ACTIVE, StaffAction.LOCK_OUT): StaffState.LOCKED,
        (StaffState.LOCKED, StaffAction.UNLOCK): StaffState.ACTIVE,
        (StaffState.ACTIVE, StaffAction.UNLOCK): StaffState.ACTIVE,  # resets the count
        (StaffState.ACTIVE, StaffAction.DISABLE): StaffState.DISABLED,
        (StaffState.LOCKED, StaffAction.DISABLE): StaffState.DISABLED,
        (StaffState.DISABLED, StaffAction.ENABLE): StaffState.ACTIVE,  # unlocked too
    }
    assert legal == STAFF_TRANSITIONS
    if (state, action) in legal:
        assert transition(state, action) is legal[(state, action)]
    else:
        with pytest.raises(IllegalTransition):
            transition(state, action)


@pytest.mark.obligation("SEC-2")
@pytest.mark.parametrize("state", list(Enrolment))
@pytest.mark.parametrize("action", list(EnrolmentAction))
def test_totp_enrolment_moves_only_as_its_table_says(
    state: Enrolment, action: EnrolmentAction
) -> None:
    legal = {
        (Enrolment.NONE, EnrolmentAction.START): Enrolment.STARTED,
        (Enrolment.STARTED, EnrolmentAction.START): Enrolment.STARTED,  # a new secret
        (Enrolment.STARTED, EnrolmentAction.CONFIRM): Enrolment.ENROLLED,
    }
    assert legal == ENROLMENT_TRANSITIONS
    if (state, action) in legal:
        assert enrol(state, action) is legal[(state, action)]
    else:
        with pytest.raises(IllegalTransition):
            enrol(state, action)


def test_the_enrolment_state_is_read_from_the_row() -> None:
    assert enrolment_of(enrolled=False, has_secret=False) is Enrolment.NONE
    assert enrolment_of(enrolled=False, has_secret=True) is Enrolment.STARTED
    assert enrolment_of(enrolled=True, has_secret=True) is Enrolment.ENROLLED


# --- the second factor (SEC-2) --------------------------------------------------------------------


def _code(at: datetime) -> str:
    return pyotp.TOTP(SECRET).at(at)


@pytest.mark.obligation("SEC-2")
@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(0, True), (-30, True), (30, True), (-60, False), (60, False), (-90, False)],
)
def test_a_totp_code_counts_for_its_step_and_one_step_either_side(
    offset: int, accepted: bool
) -> None:
    code = _code(NOW + timedelta(seconds=offset))
    proven = check_second_factor(SECRET, [], code, None, at=NOW)
    assert (proven is not None) is accepted
    if proven is not None:
        assert proven.method == "otp" and proven.remaining_codes == []


@pytest.mark.obligation("SEC-2")
def test_a_recovery_code_works_once_in_any_spelling_and_uses_up_only_itself() -> None:
    codes = new_recovery_codes()
    stored = [hash_code(c) for c in codes]
    proven = check_second_factor(SECRET, stored, None, f"  {codes[0].upper()}  ", at=NOW)
    assert proven is not None and proven.method == "recovery"
    assert proven.remaining_codes == stored[1:]
    assert check_second_factor(SECRET, proven.remaining_codes, None, codes[0], at=NOW) is None
    undashed = codes[1].replace("-", "")
    again = check_second_factor(SECRET, proven.remaining_codes, None, undashed, at=NOW)
    assert again is not None and again.remaining_codes == stored[2:]


@pytest.mark.obligation("SEC-2")
def test_a_wrong_code_and_a_wrong_recovery_code_prove_nothing() -> None:
    stored = [hash_code(c) for c in new_recovery_codes()]
    wrong = "000000" if _code(NOW) != "000000" else "111111"
    assert check_second_factor(SECRET, stored, wrong, None, at=NOW) is None
    assert check_second_factor(SECRET, stored, None, "deadbeef-deadbeef", at=NOW) is None
    assert check_second_factor(SECRET, stored, None, None, at=NOW) is None
    # a wrong TOTP code with a right recovery code: the recovery code proves it
    code = new_recovery_codes()[0]
    proven = check_second_factor(SECRET, [hash_code(code)], wrong, code, at=NOW)
    assert proven is not None and proven.method == "recovery" and proven.remaining_codes == []


def test_a_disabled_account_is_disabled_whether_or_not_it_was_locked() -> None:
    assert state_of(locked=False, disabled=False) is StaffState.ACTIVE
    assert state_of(locked=True, disabled=False) is StaffState.LOCKED
    assert state_of(locked=True, disabled=True) is StaffState.DISABLED
    assert state_of(locked=False, disabled=True) is StaffState.DISABLED


STEP = int(NOW.timestamp()) // 30


@pytest.mark.obligation("SEC-2")
def test_a_totp_code_names_its_step() -> None:
    assert totp_step_of(SECRET, _code(NOW), NOW) == STEP
    assert totp_step_of(SECRET, _code(NOW - timedelta(seconds=30)), NOW) == STEP - 1
    assert totp_step_of(SECRET, _code(NOW + timedelta(seconds=30)), NOW) == STEP + 1
    assert totp_step_of(SECRET, _code(NOW - timedelta(seconds=60)), NOW) is None


@pytest.mark.obligation("SEC-2")
def test_a_step_is_usable_only_after_the_last_one_accepted() -> None:
    assert step_usable(STEP, None)
    assert step_usable(STEP, STEP - 1)
    assert not step_usable(STEP, STEP)  # the same code again
    assert not step_usable(STEP - 1, STEP)  # an older code, still inside the drift window


@pytest.mark.obligation("SEC-2")
def test_a_used_totp_code_proves_nothing_the_second_time_nor_does_an_older_one() -> None:
    code = _code(NOW)
    first = check_second_factor(SECRET, [], code, None, at=NOW)
    assert first is not None and first.totp_step == STEP
    assert check_second_factor(SECRET, [], code, None, at=NOW, last_step=STEP) is None
    older = _code(NOW - timedelta(seconds=30))
    assert check_second_factor(SECRET, [], older, None, at=NOW, last_step=STEP) is None
    newer = _code(NOW + timedelta(seconds=30))
    proven = check_second_factor(SECRET, [], newer, None, at=NOW, last_step=STEP)
    assert proven is not None and proven.totp_step == STEP + 1
    # the refusal says why: a right code of a used step is a replay, not a typo
    assert second_factor_refusal(SECRET, code, NOW) == "code-reused"
    wrong = "000000" if code != "000000" else "111111"
    assert second_factor_refusal(SECRET, wrong, NOW) == "wrong-code"
    assert second_factor_refusal(SECRET, None, NOW) == "wrong-code"
    # a recovery code still works when the TOTP code is a replay; it has no step
    rc = new_recovery_codes()[0]
    by_recovery = check_second_factor(SECRET, [hash_code(rc)], code, rc, at=NOW, last_step=STEP)
    assert by_recovery is not None and by_recovery.method == "recovery"
    assert by_recovery.totp_step is None


def test_recovery_codes_are_eight_fresh_codes_in_the_accepted_form() -> None:
    codes = new_recovery_codes()
    assert len(codes) == RECOVERY_CODES == 8 and len(set(codes)) == 8
    assert all(re.match(RECOVERY_CODE, c) for c in codes)
    assert set(codes).isdisjoint(new_recovery_codes())
    assert hash_code(codes[0]) != codes[0] and len(hash_code(codes[0])) == 64


# --- the customer check before a look-up (USE-4) -----------------------------------------------


def _contact(email: str | None, phone: str | None) -> Contact:
    def item(value: str | None) -> ContactItem | None:
        if value is None:
            return None
        return ContactItem(value, CollectionChannel.PROVIDED_BY_USER, NOW, uuid.uuid4())

    return Contact(email=item(email), phone=item(phone))


@pytest.mark.obligation("USE-4")
@pytest.mark.parametrize(
    ("email", "last4", "confirmed"),
    [
        ("ann@example.com", "0177", True),
        ("  Ann@Example.COM ", "0177", True),  # the address as the customer may say it
        ("ann@example.org", "0177", False),
        ("ann@example.com", "0178", False),
        ("ann@example.com", "5550", False),  # digits from elsewhere in the number
    ],
)
def test_the_customer_is_confirmed_only_by_their_email_and_the_phones_last_four(
    email: str, last4: str, confirmed: bool
) -> None:
    contact = _contact("ann@example.com", "+14155550177")
    assert customer_confirmed(contact, email, last4) is confirmed


@pytest.mark.obligation("USE-4")
def test_without_a_phone_on_file_the_customer_cannot_be_confirmed() -> None:
    assert not customer_confirmed(_contact("ann@example.com", None), "ann@example.com", "0177")
    assert not customer_confirmed(_contact(None, None), "ann@example.com", "0177")


# --- what the customer sees (SEC-3) ---------------------------------------------------------------


@pytest.mark.obligation("SEC-3")
def test_the_staff_pseudonym_is_stable_distinct_and_hides_the_staff_id() -> None:
    key = b"k" * 32
    first = pseudonym(key, "staff-0123456789ab")
    assert first == pseudonym(key, "staff-0123456789ab")
    assert first != pseudonym(key, "staff-ba9876543210")
    assert first != pseudonym(b"x" * 32, "staff-0123456789ab")  # keyed
    assert re.fullmatch(r"staff-[0-9a-f]{12}", first) and "0123456789ab" not in first


def _envelope(payload: DomainEvent, actor: Actor, purpose: Purpose) -> EventEnvelope:
    return EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source="identity",
        stream_id="access-s",
        stream_version=1,
        subject_id="s",
        actor=actor,
        purpose=purpose,
        correlation_id=new_event_id(),
        payload=payload,
        occurred_at=NOW,
    )


@pytest.mark.obligation("SEC-3")
def test_the_access_log_lists_reads_only_with_staff_as_pseudonyms() -> None:
    key = b"k" * 32
    staff = Actor(kind=ActorKind.STAFF, id="staff-0123456789ab", role="customer-service")
    read = PersonalDataAccessed(
        fields=["email", "phone"], categories=["pd:Contact"], case_reference="CASE-1"
    )
    events = [
        _envelope(read, staff, Purpose.CUSTOMER_CARE),
        _envelope(
            SignedIn(principal_kind="user", session_id=uuid.uuid4(), methods=["pwd"]),
            Actor(kind=ActorKind.USER, id="s"),
            Purpose.SECURITY,
        ),
        _envelope(read, Actor(kind=ActorKind.USER, id="s"), Purpose.ACCOUNT_MANAGEMENT),
        _envelope(read, Actor(kind=ActorKind.PARTNER, id="court-1"), Purpose.LEGAL_COMPLIANCE),
    ]
    lines = access_log(events, key)
    assert [(x.who, x.kind, x.role, x.purpose) for x in lines] == [
        (pseudonym(key, staff.id), "staff", "customer-service", "customer-care"),
        ("you", "user", None, "account-management"),
        ("court-1", "partner", None, "legal-compliance"),
    ]
    assert lines[0].case_reference == "CASE-1" and lines[0].fields == ["email", "phone"]
    assert lines[0].at == NOW
    assert staff.id not in repr(lines)


def test_a_staff_members_events_have_a_stream_of_their_own() -> None:
    assert staff_stream("staff-0123456789ab") == "staff-staff-0123456789ab"
