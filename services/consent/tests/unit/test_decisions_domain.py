"""Who may ask consent what (least privilege over `POST /internal/decisions`)."""

from __future__ import annotations

import pytest

from expensura_consent.decisions.domain import NotAskable, check_askable
from expensura_events.vocabulary import Purpose


@pytest.mark.obligation("RGT-4")
def test_each_service_asks_only_its_own_questions() -> None:
    """Least privilege: loans may ask only whether it may assess credit, never for a grant of
    fields; the gateway asks about any purpose; any other service about nothing."""
    check_askable("loans", Purpose.CREDIT_ASSESSMENT, wants_grant=False)
    with pytest.raises(NotAskable):
        check_askable("loans", Purpose.CREDIT_ASSESSMENT, wants_grant=True)
    with pytest.raises(NotAskable):
        check_askable("loans", Purpose.MARKETING, wants_grant=False)
    check_askable("sharing-gateway", Purpose.MARKETING, wants_grant=True)
    with pytest.raises(NotAskable):
        check_askable("incident", Purpose.CREDIT_ASSESSMENT, wants_grant=False)
