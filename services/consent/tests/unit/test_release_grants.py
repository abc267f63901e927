"""A decision as a grant to release values: once, in time, exactly as decided."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from expensura_consent.decisions.domain import (
    RELEASE_WITHIN,
    Grant,
    ReleaseRefused,
    check_redemption,
)
from expensura_events.vocabulary import Purpose

NOW = datetime(2026, 12, 5, 9, tzinfo=UTC)
GRANT = Grant(
    decision_id=uuid.uuid4(),
    subject_id="s-1",
    purpose=Purpose.CREDIT_ASSESSMENT,
    recipient="bureau-1",
    categories=frozenset({"pd:Contact"}),
    fields=frozenset({"email", "phone"}),
    allowed=True,
    decided_at=NOW,
    released_at=None,
)


def redeem(grant: Grant | None, **ask: object) -> Grant:
    args: dict[str, object] = {
        "subject_id": "s-1",
        "recipient": "bureau-1",
        "categories": {"pd:Contact"},
        "fields": {"phone"},
        "now": NOW + timedelta(seconds=1),
    } | ask
    return check_redemption(grant, **args)  # type: ignore[arg-type]


@pytest.mark.obligation("SHR-1")
def test_a_grant_releases_what_was_decided_or_less() -> None:
    assert redeem(GRANT) == GRANT
    assert redeem(GRANT, fields={"email", "phone"}) == GRANT


@pytest.mark.obligation("SHR-1", "RGT-4")
@pytest.mark.parametrize(
    ("grant", "ask", "why"),
    [
        (None, {}, "no such decision"),
        (replace(GRANT, allowed=False), {}, "did not allow"),
        (replace(GRANT, released_at=NOW), {}, "already released"),
        (GRANT, {"now": NOW + RELEASE_WITHIN + timedelta(seconds=1)}, "expired"),
        (GRANT, {"subject_id": "s-2"}, "another subject"),
        (GRANT, {"recipient": "evil-corp"}, "another subject or recipient"),
        (replace(GRANT, fields=None), {}, "named no fields"),
        (GRANT, {"fields": {"phone", "name"}}, "wider than decided"),
        (GRANT, {"categories": {"pd:Contact", "pd:Financial"}}, "wider than decided"),
    ],
)
def test_a_grant_is_refused_when_used_twice_late_elsewhere_or_wider(
    grant: Grant | None, ask: dict[str, object], why: str
) -> None:
    with pytest.raises(ReleaseRefused, match=why):
        redeem(grant, **ask)


def test_the_window_is_inclusive_of_its_last_instant() -> None:
    assert redeem(GRANT, now=NOW + RELEASE_WITHIN) == GRANT
