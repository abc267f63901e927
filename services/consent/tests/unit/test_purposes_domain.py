"""The purpose taxonomy's rules: versions, widening, what a consent still covers."""

from __future__ import annotations

import pytest

from expensura_consent.purposes import domain as taxonomy
from expensura_events.vocabulary import DataCategory, Grade, Purpose


@pytest.mark.obligation("RUL-1", "SHR-4")
def test_every_purpose_of_the_policy_has_numbered_versions_and_none_is_a_sale() -> None:
    assert set(taxonomy.HISTORY) == set(Purpose)
    assert not any("sale" in p.value or "rent" in p.value for p in Purpose)
    for purpose, history in taxonomy.HISTORY.items():
        assert [v.version for v in history] == list(range(1, len(history) + 1))
        assert all(v.purpose is purpose and v.categories for v in history)
        assert taxonomy.current(purpose) is history[-1]
        assert taxonomy.version(purpose, 1) is history[0]
        assert taxonomy.version(purpose, len(history) + 1) is None


def test_a_version_widens_with_a_new_category_or_a_higher_grade_only() -> None:
    base = taxonomy._v(Purpose.MARKETING, 1, Grade.PERSONAL, DataCategory.CONTACT)
    same = taxonomy._v(Purpose.MARKETING, 2, Grade.PERSONAL, DataCategory.CONTACT)
    narrower_grade = taxonomy._v(Purpose.MARKETING, 2, Grade.GENERAL, DataCategory.CONTACT)
    more = taxonomy._v(
        Purpose.MARKETING, 2, Grade.PERSONAL, DataCategory.CONTACT, DataCategory.NAME
    )
    higher = taxonomy._v(Purpose.MARKETING, 2, Grade.SENSITIVE, DataCategory.CONTACT)
    assert not same.widens(base) and not narrower_grade.widens(base)
    assert more.widens(base) and higher.widens(base)
    assert not base.widens(more)


@pytest.mark.obligation("RUL-4")
def test_consent_to_an_older_version_covers_only_until_the_purpose_widens() -> None:
    assert not taxonomy.consent_still_covers(Purpose.PERSONALISATION, 1)
    assert taxonomy.consent_still_covers(Purpose.PERSONALISATION, 2)
    assert taxonomy.consent_still_covers(Purpose.MARKETING, 1)
    assert not taxonomy.consent_still_covers(Purpose.MARKETING, 99)  # never existed


@pytest.mark.obligation("RUL-1")
def test_categories_outside_the_purposes_current_version_are_named() -> None:
    assert taxonomy.outside(Purpose.MARKETING, {"pd:Contact", "pd:Name"}) == set()
    assert taxonomy.refusal(Purpose.MARKETING, {"pd:Contact"}) is None
    assert taxonomy.outside(Purpose.MARKETING, {"pd:Contact", "pd:OfficialID"}) == {"pd:OfficialID"}
    assert taxonomy.refusal(Purpose.MARKETING, {"pd:OfficialID", "pd:BankAccount"}) == (
        "marketing may not use pd:BankAccount, pd:OfficialID"
    )


def test_disclosing_purposes_are_marked() -> None:
    disclosing = {p for p in Purpose if taxonomy.current(p).discloses}
    assert Purpose.CREDIT_ASSESSMENT in disclosing and Purpose.MARKETING not in disclosing
