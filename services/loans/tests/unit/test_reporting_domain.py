"""Credit reporting rules in memory (SHR-4): the Metro 2-style furnishing file, its trailer
checks, and the bureau-dispute investigation deadline.

The known portfolio's expected file (`data/metro2_known_portfolio.txt`) was built from
`KNOWN_FILE_SPEC` below, position by position as the Resource Guide numbers them, with every
value typed out by hand (amounts already in whole dollars, dates as MMDDYYYY): it shares no
code with the module under test.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest

from expensura_events.catalog.loans_reporting import (
    BureauDisputeAnswered,
    DisputeOutcomeName,
)
from expensura_events.obligations import enforced_by
from expensura_events.registry import REGISTRY
from expensura_loans.reporting.domain import (
    AccountSnapshot,
    DisputeOutcome,
    FieldOverflow,
    Furnisher,
    InconsistentSnapshot,
    InvalidFieldValue,
    InvalidFile,
    ReportedStatus,
    TrailerTotals,
    furnish,
    furnishing_file,
    investigation_deadline,
    overdue,
    parse_trailer,
    validate,
)

KNOWN_FILE = Path(__file__).parent / "data" / "metro2_known_portfolio.txt"

# (1-based start position, the characters there); every other position is a blank.
KNOWN_FILE_SPEC: list[list[tuple[int, str]]] = [
    [  # header
        (1, "0426"),
        (5, "HEADER"),
        (23, "EFX1234567"),
        (33, "EX123"),
        (38, "TU12345678"),
        (48, "10312026"),
        (56, "11022026"),
        (64, "01152026"),
        (72, "06012026"),
        (80, "EXPENSURA LENDING"),
        (120, "1 MARKET STREET, SAN FRANCISCO, CA 94105"),
        (216, "4155550100"),
        (281, "EXPLOANS0001"),
    ],
    [  # LN0001: current
        (1, "04261"),
        (6, "10312026000000"),
        (21, "EXPLOANS0001"),
        (43, "LN0001"),
        (73, "I01"),
        (76, "11152025"),
        (84, "000000000"),
        (93, "000012000"),
        (102, "036M"),
        (106, "000000398"),
        (115, "000000398"),
        (124, "11"),
        (127, "00000000000BBBBBBBBBBBBB"),
        (155, "000010950"),
        (164, "000000000"),
        (173, "000000000"),
        (182, "10312026"),
        (190, "00000000"),
        (198, "00000000"),
        (206, "10152026"),
        (232, "DOE"),
        (257, "JANE"),
        (298, "000000000"),
        (307, "04121990"),
        (315, "0000000000"),
        (325, "1"),
        (330, "12 ELM STREET"),
        (394, "SPRINGFIELD"),
        (414, "IL"),
        (416, "62704"),
    ],
    [  # LN0002: 60 days past due
        (1, "04261"),
        (6, "10312026000000"),
        (21, "EXPLOANS0001"),
        (43, "LN0002"),
        (73, "I01"),
        (76, "06012025"),
        (84, "000000000"),
        (93, "000008000"),
        (102, "024M"),
        (106, "000000362"),
        (115, "000000000"),
        (124, "78"),
        (127, "10000000000000BBBBBBBBBB"),
        (155, "000006123"),
        (164, "000000724"),
        (173, "000000000"),
        (182, "10312026"),
        (190, "09012026"),
        (198, "00000000"),
        (206, "08012026"),
        (232, "SMITH"),
        (257, "JOHN"),
        (297, "J"),
        (298, "000000000"),
        (307, "12011985"),
        (315, "0000000000"),
        (325, "1"),
        (330, "400 OAK AVENUE APT 5"),
        (394, "RIVERSIDE"),
        (414, "CA"),
        (416, "92501"),
    ],
    [  # LN0003: paid off
        (1, "04261"),
        (6, "10312026000000"),
        (21, "EXPLOANS0001"),
        (43, "LN0003"),
        (73, "I01"),
        (76, "11102025"),
        (84, "000000000"),
        (93, "000005000"),
        (102, "012M"),
        (106, "000000444"),
        (115, "000000450"),
        (124, "130"),
        (127, "0000000000BBBBBBBBBBBBBB"),
        (155, "000000000"),
        (164, "000000000"),
        (173, "000000000"),
        (182, "10312026"),
        (190, "00000000"),
        (198, "10202026"),
        (206, "10202026"),
        (232, "GARCIA"),
        (257, "MARIA"),
        (298, "000000000"),
        (307, "07231978"),
        (315, "0000000000"),
        (325, "1"),
        (330, "77 PINE ROAD"),
        (394, "AUSTIN"),
        (414, "TX"),
        (416, "787011234"),
    ],
    [  # LN0004: charged off, under dispute
        (1, "04261"),
        (6, "10312026000000"),
        (21, "EXPLOANS0001"),
        (43, "LN0004"),
        (73, "I01"),
        (76, "03052024"),
        (84, "000000000"),
        (93, "000003000"),
        (102, "018M"),
        (106, "000000185"),
        (115, "000000000"),
        (124, "97"),
        (127, "LLLL54321000000000000000"),
        (153, "XB"),
        (155, "000002210"),
        (164, "000002210"),
        (173, "000002210"),
        (182, "10312026"),
        (190, "12052025"),
        (198, "06302026"),
        (206, "11052025"),
        (232, "LEE"),
        (257, "KIM"),
        (298, "000000000"),
        (307, "02281995"),
        (315, "0000000000"),
        (325, "1"),
        (330, "9 HARBOR WAY"),
        (394, "BOSTON"),
        (414, "MA"),
        (416, "02110"),
    ],
    [  # trailer
        (1, "0426TRAILER"),
        (12, "000000004"),
        (84, "000000001"),  # status 11
        (93, "000000001"),  # status 13
        (147, "000000000"),  # status 71
        (156, "000000001"),  # status 78
        (165, "000000000"),  # status 80
        (174, "000000000"),  # status 82
        (255, "000000001"),  # status 97
        (408, "000019283"),  # 10950 + 6123 + 0 + 2210
        (417, "000002934"),  # 0 + 724 + 0 + 2210
    ],
]


def from_spec(spec: list[list[tuple[int, str]]]) -> str:
    lines = []
    for record in spec:
        line = [" "] * 426
        taken: set[int] = set()
        for start, text in record:
            span = set(range(start - 1, start - 1 + len(text)))
            assert not span & taken, f"the spec overlaps at {start}"
            taken |= span
            line[start - 1 : start - 1 + len(text)] = text
        assert len(line) == 426
        lines.append("".join(line) + "\n")
    return "".join(lines)


FURNISHER = Furnisher(
    identification_number="EXPLOANS0001",
    name="Expensura Lending",
    address="1 Market Street, San Francisco, CA 94105",
    telephone="4155550100",
    program_date=date(2026, 1, 15),
    program_revision_date=date(2026, 6, 1),
    equifax_program_identifier="EFX1234567",
    experian_program_identifier="EX123",
    transunion_program_identifier="TU12345678",
)
ACTIVITY = date(2026, 10, 31)

CURRENT = AccountSnapshot(
    account_number="LN0001",
    date_opened=date(2025, 11, 15),
    original_amount_cents=1_200_000,
    terms_duration_months=36,
    scheduled_monthly_payment_cents=39_860,
    actual_payment_cents=39_860,
    current_balance_cents=1_095_043,
    amount_past_due_cents=0,
    status=ReportedStatus.CURRENT,
    original_charge_off_amount_cents=0,
    date_of_account_information=ACTIVITY,
    date_of_first_delinquency=None,
    date_closed=None,
    date_of_last_payment=date(2026, 10, 15),
    payment_history_profile="00000000000BBBBBBBBBBBBB",
    surname="Doe",
    first_name="Jane",
    date_of_birth=date(1990, 4, 12),
    address_line="12 Elm Street",
    city="Springfield",
    state="IL",
    postal_code="62704",
    consumer_reference="consumer-1",
)
SIXTY_DAYS_LATE = AccountSnapshot(
    account_number="LN0002",
    date_opened=date(2025, 6, 1),
    original_amount_cents=800_000,
    terms_duration_months=24,
    scheduled_monthly_payment_cents=36_200,
    actual_payment_cents=0,
    current_balance_cents=612_399,  # $6,123.99: reported 6123, cents truncated
    amount_past_due_cents=72_400,
    status=ReportedStatus.PAST_DUE_60,
    original_charge_off_amount_cents=0,
    date_of_account_information=ACTIVITY,
    date_of_first_delinquency=date(2026, 9, 1),
    date_closed=None,
    date_of_last_payment=date(2026, 8, 1),
    payment_history_profile="10000000000000BBBBBBBBBB",
    surname="Smith",
    first_name="John",
    generation_code="J",
    date_of_birth=date(1985, 12, 1),
    address_line="400 Oak Avenue Apt 5",
    city="Riverside",
    state="CA",
    postal_code="92501",
    consumer_reference="consumer-2",
)
PAID_OFF = AccountSnapshot(
    account_number="LN0003",
    date_opened=date(2025, 11, 10),
    original_amount_cents=500_000,
    terms_duration_months=12,
    scheduled_monthly_payment_cents=44_424,
    actual_payment_cents=45_012,
    current_balance_cents=0,
    amount_past_due_cents=0,
    status=ReportedStatus.PAID_OFF,
    original_charge_off_amount_cents=0,
    date_of_account_information=ACTIVITY,
    date_of_first_delinquency=None,
    date_closed=date(2026, 10, 20),
    date_of_last_payment=date(2026, 10, 20),
    payment_history_profile="0000000000BBBBBBBBBBBBBB",
    surname="Garcia",
    first_name="Maria",
    date_of_birth=date(1978, 7, 23),
    address_line="77 Pine Road",
    city="Austin",
    state="TX",
    postal_code="787011234",
    consumer_reference="consumer-3",
)
CHARGED_OFF = AccountSnapshot(
    account_number="LN0004",
    date_opened=date(2024, 3, 5),
    original_amount_cents=300_000,
    terms_duration_months=18,
    scheduled_monthly_payment_cents=18_500,
    actual_payment_cents=0,
    current_balance_cents=221_099,
    amount_past_due_cents=221_099,
    status=ReportedStatus.CHARGED_OFF,
    original_charge_off_amount_cents=221_099,
    date_of_account_information=ACTIVITY,
    date_of_first_delinquency=date(2025, 12, 5),
    date_closed=date(2026, 6, 30),
    date_of_last_payment=date(2025, 11, 5),
    payment_history_profile="LLLL54321000000000000000",
    surname="Lee",
    first_name="Kim",
    date_of_birth=date(1995, 2, 28),
    address_line="9 Harbor Way",
    city="Boston",
    state="MA",
    postal_code="02110",
    consumer_reference="consumer-4",
    compliance_condition_code="XB",
)
# Out of account-number order on purpose: the file sorts them.
PORTFOLIO = [CHARGED_OFF, PAID_OFF, CURRENT, SIXTY_DAYS_LATE]


def known_file() -> str:
    return furnishing_file(FURNISHER, ACTIVITY, PORTFOLIO, created_on=date(2026, 11, 2))


def replace(text: str, line: int, start: int, new: str) -> str:
    """`text` with `new` written at 1-based `start` of 1-based record `line`."""
    records = text.split("\n")
    record = records[line - 1]
    records[line - 1] = record[: start - 1] + new + record[start - 1 + len(new) :]
    return "\n".join(records)


@pytest.mark.obligation("SHR-4")
def test_the_checked_in_file_is_the_hand_typed_spec() -> None:
    assert KNOWN_FILE.read_text(encoding="ascii") == from_spec(KNOWN_FILE_SPEC)


@pytest.mark.obligation("SHR-4")
def test_a_known_portfolio_gives_the_expected_file_byte_for_byte() -> None:
    assert known_file().encode("ascii") == KNOWN_FILE.read_bytes()


@pytest.mark.obligation("SHR-4")
def test_every_record_is_426_characters_from_header_to_trailer() -> None:
    text = known_file()
    assert text.endswith("\n")
    records = text[:-1].split("\n")
    assert len(records) == 6
    assert all(len(r) == 426 for r in records)
    assert records[0].startswith("0426HEADER")
    assert all(r.startswith("04261") for r in records[1:-1])
    assert records[-1].startswith("0426TRAILER")


@pytest.mark.obligation("SHR-4")
def test_the_trailer_declares_the_count_and_totals_of_the_base_records() -> None:
    text = known_file()
    assert parse_trailer(text) == TrailerTotals(
        total_base_records=4,
        total_status_11=1,
        total_status_13=1,
        total_status_71=0,
        total_status_78=1,
        total_status_80=0,
        total_status_82=0,
        total_status_97=1,
        total_current_balance=19_283,
        total_amount_past_due=2_934,
    )
    validate(text)


def test_the_same_month_always_gives_the_same_file() -> None:
    again = furnishing_file(
        FURNISHER, ACTIVITY, list(reversed(PORTFOLIO)), created_on=date(2026, 11, 2)
    )
    assert again == known_file()


@pytest.mark.obligation("SHR-4")
def test_validate_catches_a_tampered_balance() -> None:
    tampered = replace(known_file(), 3, 155, "000006124")  # LN0002's balance, one dollar up
    with pytest.raises(InvalidFile, match="total_current_balance"):
        validate(tampered)


@pytest.mark.obligation("SHR-4")
def test_validate_catches_a_wrong_count() -> None:
    with pytest.raises(InvalidFile, match="total_base_records"):
        validate(replace(known_file(), 6, 12, "000000005"))
    records = known_file().split("\n")
    del records[2]
    with pytest.raises(InvalidFile):
        validate("\n".join(records))


def test_validate_catches_a_changed_status_and_a_broken_record() -> None:
    with pytest.raises(InvalidFile, match="total_status"):
        validate(replace(known_file(), 2, 124, "71"))
    with pytest.raises(InvalidFile, match="not numeric"):
        validate(replace(known_file(), 2, 155, "00001095X"))
    short = known_file().replace("62704    ", "62704   ", 1)
    with pytest.raises(InvalidFile, match="425 characters"):
        validate(short)
    with pytest.raises(InvalidFile):
        validate(known_file()[:-1])


@pytest.mark.obligation("SHR-4")
def test_a_name_too_long_for_its_field_is_refused_not_truncated() -> None:
    long_name = dataclasses.replace(CURRENT, surname="A" * 26)
    with pytest.raises(FieldOverflow):
        furnishing_file(FURNISHER, ACTIVITY, [long_name])
    assert "A" * 25 in furnishing_file(
        FURNISHER, ACTIVITY, [dataclasses.replace(CURRENT, surname="A" * 25)]
    )


def test_an_amount_too_large_for_nine_digits_of_dollars_is_refused() -> None:
    huge = dataclasses.replace(CURRENT, original_amount_cents=1_000_000_000_00)
    with pytest.raises(FieldOverflow):
        furnishing_file(FURNISHER, ACTIVITY, [huge])


def test_text_outside_printable_ascii_is_refused() -> None:
    for surname in ("Müller", "Doe\nX"):
        with pytest.raises(InvalidFieldValue):
            furnishing_file(FURNISHER, ACTIVITY, [dataclasses.replace(CURRENT, surname=surname)])


def snapshot_with(status: ReportedStatus) -> AccountSnapshot:
    if status is ReportedStatus.CURRENT:
        return CURRENT
    if status is ReportedStatus.PAID_OFF:
        return PAID_OFF
    if status is ReportedStatus.CHARGED_OFF:
        return CHARGED_OFF
    return dataclasses.replace(SIXTY_DAYS_LATE, status=status)


@pytest.mark.obligation("SHR-4")
@pytest.mark.parametrize(
    ("status", "code", "rating"),
    [
        (ReportedStatus.CURRENT, "11", " "),
        (ReportedStatus.PAST_DUE_30, "71", " "),
        (ReportedStatus.PAST_DUE_60, "78", " "),
        (ReportedStatus.PAST_DUE_90, "80", " "),
        (ReportedStatus.PAST_DUE_120, "82", " "),
        (ReportedStatus.PAID_OFF, "13", "0"),
        (ReportedStatus.CHARGED_OFF, "97", " "),
    ],
)
def test_each_status_is_reported_with_its_metro_2_code(
    status: ReportedStatus, code: str, rating: str
) -> None:
    text = furnishing_file(FURNISHER, ACTIVITY, [snapshot_with(status)])
    base = text.split("\n")[1]
    assert base[123:125] == code  # positions 124-125
    assert base[125] == rating  # position 126
    validate(text)


def test_every_reported_status_has_a_code() -> None:
    assert {s.value for s in ReportedStatus} == {
        "current",
        "30",
        "60",
        "90",
        "120",
        "paid-off",
        "charged-off",
    }


def test_we_furnish_no_ssn_and_no_telephone() -> None:
    base = known_file().split("\n")[1]
    assert base[297:306] == "000000000"  # positions 298-306
    assert base[314:324] == "0000000000"  # positions 315-324
    assert "consumer-1" not in known_file()


@pytest.mark.parametrize(
    "change",
    [
        {"status": ReportedStatus.PAST_DUE_30, "date_of_first_delinquency": None},
        {"status": ReportedStatus.PAST_DUE_90, "amount_past_due_cents": 0},
        {"status": ReportedStatus.CURRENT, "date_of_first_delinquency": None},
        {"payment_history_profile": "0" * 23},
        {"payment_history_profile": "X" * 24},
        {"current_balance_cents": -1},
    ],
)
def test_a_snapshot_that_contradicts_its_status_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(InconsistentSnapshot):
        dataclasses.replace(SIXTY_DAYS_LATE, **change)  # type: ignore[arg-type]


def test_a_paid_off_account_needs_a_zero_balance_and_a_close_date() -> None:
    with pytest.raises(InconsistentSnapshot):
        dataclasses.replace(PAID_OFF, current_balance_cents=100)
    with pytest.raises(InconsistentSnapshot):
        dataclasses.replace(PAID_OFF, date_closed=None)
    with pytest.raises(InconsistentSnapshot):
        dataclasses.replace(CHARGED_OFF, original_charge_off_amount_cents=0)


def test_an_account_is_furnished_once() -> None:
    with pytest.raises(InconsistentSnapshot):
        furnishing_file(FURNISHER, ACTIVITY, [CURRENT, CURRENT])


def test_the_file_builder_and_its_check_are_marked_as_enforcing_shr_4() -> None:
    where = [e.where for e in enforced_by().get("SHR-4", [])]
    assert "expensura_loans.reporting.domain:furnishing_file" in where
    assert "expensura_loans.reporting.domain:validate" in where


RECEIVED = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


@pytest.mark.obligation("SHR-4")
def test_a_dispute_is_investigated_within_30_days() -> None:
    assert investigation_deadline(RECEIVED) == datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    assert not overdue(RECEIVED, datetime(2026, 12, 3, 9, 30, tzinfo=UTC))
    assert overdue(RECEIVED, datetime(2026, 12, 3, 9, 30, 1, tzinfo=UTC))


@pytest.mark.obligation("SHR-4")
def test_more_information_from_the_consumer_extends_it_to_45_days() -> None:
    deadline = investigation_deadline(RECEIVED, consumer_supplied_more_information=True)
    assert deadline == datetime(2026, 12, 18, 9, 30, tzinfo=UTC)
    assert deadline - RECEIVED == timedelta(days=45)
    late = datetime(2026, 12, 10, tzinfo=UTC)
    assert overdue(RECEIVED, late)
    assert not overdue(RECEIVED, late, consumer_supplied_more_information=True)


def test_a_deadline_needs_a_timezone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        investigation_deadline(datetime(2026, 11, 3, 9, 30))


def test_dispute_outcomes_are_the_bureau_s_words_and_the_event_s() -> None:
    assert [o.value for o in DisputeOutcome] == ["verified-as-reported", "modified", "deleted"]
    assert set(get_args(DisputeOutcomeName)) == {o.value for o in DisputeOutcome}
    event = BureauDisputeAnswered(dispute_id="d-1", outcome=DisputeOutcome.MODIFIED)
    assert event.outcome == "modified"


@pytest.mark.obligation("SEC-1", "SHR-4")
def test_each_borrowers_line_is_sealed_in_an_event_of_theirs_and_the_file_event_names_no_one() -> (
    None
):
    schemas = REGISTRY.json_schemas()
    line = schemas["loans.AccountFurnished"]["properties"]
    assert line["record"]["x-personal-data"] == {
        "category": "pd:CreditRecord",
        "grade": "sensitive",
        "encrypted": True,
    }
    produced = schemas["loans.FurnishingFileProduced"]["properties"]
    assert not any("x-personal-data" in field for field in produced.values())

    furnishing = furnish(FURNISHER, ACTIVITY, PORTFOLIO, created_on=date(2026, 11, 2))
    assert furnishing.text == KNOWN_FILE.read_text(encoding="ascii")
    records = furnishing.text.splitlines()[1:-1]
    assert [event.record for _, event in furnishing.lines] == records
    assert [subject for subject, _ in furnishing.lines] == [
        a.consumer_reference for a in sorted(PORTFOLIO, key=lambda a: a.account_number)
    ]
    assert furnishing.produced.record_count == 4
    assert furnishing.produced.status_counts == {"11": 1, "13": 1, "78": 1, "97": 1}
    assert furnishing.produced.sha256 == hashlib.sha256(KNOWN_FILE.read_bytes()).hexdigest()
    assert furnishing.produced.period == "2026-10"
