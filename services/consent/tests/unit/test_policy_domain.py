"""Policy versions in memory: what may be published, the subject's answer, the notices."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from expensura_consent.policy.domain import (
    InvalidVersion,
    answer,
    answer_stream,
    new_version,
    notice,
    notice_stream,
    policy_stream,
)
from expensura_events.catalog.consent import PolicyVersionAccepted, PolicyVersionRefused

NOW = datetime(2026, 11, 25, tzinfo=UTC)
TEXT = "The whole policy, word for word."


def test_a_version_is_published_with_the_digest_of_its_text() -> None:
    version, event = new_version("2026-12", TEXT, "Clearer", NOW, NOW)
    assert version.sha256 == event.sha256 == hashlib.sha256(TEXT.encode()).hexdigest()
    assert (event.version, event.effective_at, event.summary) == ("2026-12", NOW, "Clearer")
    assert policy_stream("2026-12") == "policy-2026-12"


@pytest.mark.parametrize(
    ("number", "text", "summary"),
    [
        ("", TEXT, "Clearer"),
        ("v 2", TEXT, "Clearer"),
        ("-2", TEXT, "Clearer"),
        ("2\n", TEXT, "Clearer"),
        ("x" * 51, TEXT, "Clearer"),
        ("2", "short", "Clearer"),
        ("2", TEXT, "no"),
    ],
)
def test_a_version_needs_a_plain_number_its_text_and_a_summary(
    number: str, text: str, summary: str
) -> None:
    with pytest.raises(InvalidVersion):
        new_version(number, text, summary, NOW, NOW)


@pytest.mark.obligation("POL-2")
def test_refusing_a_version_is_recorded_and_leads_to_cancellation() -> None:
    accepted, event = answer("2", "s", True, NOW)
    assert event == PolicyVersionAccepted(version="2") and accepted.next_step is None
    refused, event = answer("2", "s", False, NOW)
    assert event == PolicyVersionRefused(version="2")
    assert refused.next_step is not None and "cancellation" in refused.next_step
    assert answer_stream("2", "s") == "policy-answer-2-s"


@pytest.mark.obligation("POL-1")
def test_a_notice_is_one_per_version_and_subject() -> None:
    assert notice("2", NOW).version == "2" and notice("2", NOW).effective_at == NOW
    assert notice_stream("2", "s") == "policy-notice-2-s"
    assert notice_stream("2", "s") != notice_stream("2", "t") != notice_stream("3", "s")
