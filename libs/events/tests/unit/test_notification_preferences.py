"""The customer's notification preferences as identity records them (USE-10): a channel
order without repeats, the address each chosen channel needs, and a U.S. mailing address a
letter can carry; the token and the address are marked personal, so the log seals them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from expensura_events.catalog.identity_notifications import (
    MailingAddress,
    NotificationPreferencesSet,
)
from expensura_events.catalog.incident_notices import NoticeChannel
from expensura_events.registry import personal_categories
from expensura_events.vocabulary import CollectionChannel

pytestmark = pytest.mark.obligation("USE-10")

ADDRESS = "Ann Lee\n400 Oak Avenue\nApt 5\nRiverside, CA 92501-1234"
BY_USER = CollectionChannel.PROVIDED_BY_USER


def test_a_mailing_address_reads_name_lines_city_state_and_zip() -> None:
    assert MailingAddress.parse(ADDRESS) == MailingAddress(
        "Ann Lee", "400 Oak Avenue", "Apt 5", "Riverside", "CA", "92501-1234"
    )
    assert MailingAddress.parse("Bo Chan\n9 Harbor Way\nBoston MA 02110").line2 is None


@pytest.mark.parametrize(
    "text",
    [
        "Ann Lee\nRiverside, CA 92501",  # no delivery line
        "Ann Lee\n400 Oak Avenue\nRiverside, California 92501",  # not a state code
        "Ann Lee\n400 Oak Avenue\nRiverside, CA 9250",  # not a ZIP code
        "Ann Lee\n\n400 Oak Avenue\nRiverside, CA 92501",  # an empty line
        "A\nB\nC\nD\nRiverside, CA 92501",  # too many lines
        "Ann Lee\n400 Oak\x1bAvenue\nRiverside, CA 92501",  # a control character
        "Ann Lee\r\n400 Oak Avenue\r\nRiverside, CA 92501",  # line breaks are \n alone
    ],
)
def test_text_that_is_no_us_mailing_address_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        MailingAddress.parse(text)


def test_a_choice_names_each_channel_once_and_at_least_one() -> None:
    with pytest.raises(ValidationError):
        NotificationPreferencesSet(channels=[], channel=BY_USER)
    with pytest.raises(ValidationError):
        NotificationPreferencesSet(
            channels=[NoticeChannel.EMAIL, NoticeChannel.EMAIL], channel=BY_USER
        )
    chosen = NotificationPreferencesSet(
        channels=[NoticeChannel.SMS, NoticeChannel.EMAIL], channel=BY_USER
    )
    assert chosen.channels == [NoticeChannel.SMS, NoticeChannel.EMAIL]


def test_push_needs_a_token_and_letter_a_mailing_address() -> None:
    with pytest.raises(ValidationError, match="push token"):
        NotificationPreferencesSet(channels=[NoticeChannel.PUSH], channel=BY_USER)
    with pytest.raises(ValidationError, match="mailing address"):
        NotificationPreferencesSet(channels=[NoticeChannel.LETTER], channel=BY_USER)
    with pytest.raises(ValidationError):
        NotificationPreferencesSet(
            channels=[NoticeChannel.LETTER], mailing_address="nowhere", channel=BY_USER
        )
    NotificationPreferencesSet(
        channels=[NoticeChannel.PUSH, NoticeChannel.LETTER],
        push_token="fcm-token",
        mailing_address=ADDRESS,
        channel=BY_USER,
    )


def test_the_token_and_the_address_are_personal_and_the_order_is_not() -> None:
    assert personal_categories(NotificationPreferencesSet, ["push_token"]) == ["pd:DeviceBased"]
    assert personal_categories(NotificationPreferencesSet, ["mailing_address"]) == ["pd:Contact"]
    with pytest.raises(ValueError, match="no personal field channels"):
        personal_categories(NotificationPreferencesSet, ["channels"])
