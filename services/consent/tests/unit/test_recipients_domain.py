"""Who a consent or a ground may name: registered partners and the public, no one else."""

from __future__ import annotations

import pytest

from expensura_consent.recipients.domain import UnknownRecipients, check_recipients
from expensura_events.vocabulary import PUBLIC_RECIPIENT


@pytest.mark.obligation("PUB-1")
def test_only_registered_partners_and_the_public_may_be_named() -> None:
    check_recipients({"bureau-a", PUBLIC_RECIPIENT}, {"bureau-a", "bank-b"})
    check_recipients(set(), set())
    with pytest.raises(UnknownRecipients, match="nowhere-court"):
        check_recipients({"bureau-a", "nowhere-court"}, {"bureau-a"})
