"""The constrained types every service's edge uses: what they refuse and what they keep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from expensura_events.fields import (
    EmailAddress,
    Identifier,
    Instant,
    LongText,
    PhoneNumber,
    Secret,
    ShortText,
    SingleLine,
    Token,
)

TEXT_TYPES: dict[str, TypeAdapter[Any]] = {
    "Identifier": TypeAdapter(Identifier),
    "SingleLine": TypeAdapter(SingleLine),
    "ShortText": TypeAdapter(ShortText),
    "LongText": TypeAdapter(LongText),
    "Secret": TypeAdapter(Secret),
    "Token": TypeAdapter(Token),
    "EmailAddress": TypeAdapter(EmailAddress),
    "PhoneNumber": TypeAdapter(PhoneNumber),
}
# Valid for every type above, so that only the injected character can make it fail.
SEEDS = {
    "Identifier": "partner-7",
    "SingleLine": "case 2026-117",
    "ShortText": "a reason",
    "LongText": "a policy text",
    "Secret": "correct horse",
    "Token": "abc.def_ghi",
    "EmailAddress": "someone@example.com",
    "PhoneNumber": "+14155550100",
}
# C0 controls (tab, line feed and carriage return are tested apart), DEL, C1 controls.
CONTROLS = st.sampled_from(
    [chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0))]
)


def refused(adapter: TypeAdapter[Any], value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return True
    return False


@given(name=st.sampled_from(sorted(TEXT_TYPES)), control=CONTROLS, where=st.integers(0, 30))
def test_no_text_type_accepts_a_control_character_anywhere(
    name: str, control: str, where: int
) -> None:
    seed = SEEDS[name]
    at = where % (len(seed) + 1)
    assert refused(TEXT_TYPES[name], seed[:at] + control + seed[at:])


def test_a_nul_in_an_e_mail_address_is_refused() -> None:
    for email in ("a\x00@example.com", "a@exam\x00ple.com", "a@example.com\x00", "a@b.cd\x85"):
        assert refused(TEXT_TYPES["EmailAddress"], email)


@pytest.mark.parametrize("name", ["Identifier", "SingleLine", "Secret", "Token", "EmailAddress"])
@pytest.mark.parametrize("separator", ["\n", "\r", "\t", "\u2028", "\u2029"])
def test_single_line_types_refuse_line_breaks(name: str, separator: str) -> None:
    assert refused(TEXT_TYPES[name], SEEDS[name] + separator + SEEDS[name])


@pytest.mark.parametrize("name", ["ShortText", "LongText"])
def test_free_text_keeps_its_line_breaks_and_tabs(name: str) -> None:
    text = "first line\n\tsecond line\r\nthird"
    assert TEXT_TYPES[name].validate_python(text) == text


@given(
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=200)
)
def test_printable_text_of_any_script_is_kept_as_given(text: str) -> None:
    assert TEXT_TYPES["SingleLine"].validate_python(text) == text
    assert TEXT_TYPES["ShortText"].validate_python(text) == text


@pytest.mark.parametrize(
    ("name", "limit"), [("SingleLine", 500), ("ShortText", 1000), ("Secret", 200)]
)
def test_every_text_type_has_a_length_limit(name: str, limit: int) -> None:
    assert not refused(TEXT_TYPES[name], "x" * limit)
    assert refused(TEXT_TYPES[name], "x" * (limit + 1))
    assert refused(TEXT_TYPES[name], "")


@pytest.mark.parametrize("value", ["a#hold:loan-records", "a/b", "-leading", "ünïcode", "a b"])
def test_identifiers_are_plain_ascii_names(value: str) -> None:
    assert refused(TEXT_TYPES["Identifier"], value)


@pytest.mark.parametrize(
    "email", ["someone@example.com", "first.last+tag@sub.example.org", "用户@例子.广告"]
)
def test_real_e_mail_addresses_are_accepted(email: str) -> None:
    assert TEXT_TYPES["EmailAddress"].validate_python(email)


@pytest.mark.parametrize(
    "email", ["no-at-sign", "a@b", "two@@example.com", '"quoted"@example.com', "a@localhost"]
)
def test_malformed_e_mail_addresses_are_refused(email: str) -> None:
    assert refused(TEXT_TYPES["EmailAddress"], email)


INSTANT = TypeAdapter(Instant)


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
    )
)
def test_an_instant_is_kept_as_the_same_moment_in_utc(moment: datetime) -> None:
    stored = INSTANT.validate_python(moment)
    # timestamps, not ==: aware datetimes in a fold or gap never compare equal across zones
    assert stored.tzinfo is UTC and stored.timestamp() == moment.timestamp()


@given(offset=st.integers(1, 23 * 60 + 59))
def test_an_instant_past_year_9999_in_utc_is_refused(offset: int) -> None:
    minutes = timedelta(minutes=offset)
    late = datetime(9999, 12, 31, 23, 59, tzinfo=UTC).replace(tzinfo=timezone(-minutes))
    early = datetime(1, 1, 1, 0, 0, tzinfo=timezone(minutes))
    assert refused(INSTANT, late.isoformat())
    assert refused(INSTANT, early.isoformat())


def test_an_instant_needs_its_offset() -> None:
    assert refused(INSTANT, "2026-11-26T10:00:00")
    assert INSTANT.validate_python("2026-11-26T10:00:00+08:00") == datetime(
        2026, 11, 26, 2, tzinfo=UTC
    )
