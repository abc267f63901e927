"""RUL-2: once a subject's processing stopped, only the law's own purposes may use their data."""

from __future__ import annotations

from typing import Any

import pytest

from expensura_events.privacy.restrictions import (
    ALLOWED_AFTER_STOP,
    ProcessingRestricted,
    Restriction,
    check_allowed,
    ensure_permitted,
    permits,
)
from expensura_events.vocabulary import Purpose

pytestmark = pytest.mark.obligation("RUL-2")

RESTRICTED_PURPOSES = [p for p in Purpose if p not in ALLOWED_AFTER_STOP]


def test_the_states_are_stored_as_their_names() -> None:
    # every service's subject_restrictions table and the API's problem details hold these
    assert [r.value for r in Restriction] == ["processing-stopped", "erased"]
    assert f"{Restriction.ERASED}" == "erased"


def test_only_legal_compliance_and_security_survive_a_restriction() -> None:
    assert {Purpose.LEGAL_COMPLIANCE, Purpose.SECURITY} == ALLOWED_AFTER_STOP
    assert RESTRICTED_PURPOSES  # the rule below is not vacuous


@pytest.mark.parametrize("purpose", list(Purpose))
def test_an_unrestricted_subject_permits_every_purpose(purpose: Purpose) -> None:
    assert permits(None, purpose)
    ensure_permitted("s-1", None, purpose)


@pytest.mark.parametrize("state", list(Restriction))
@pytest.mark.parametrize("purpose", RESTRICTED_PURPOSES)
def test_a_restricted_subject_refuses_every_other_purpose(
    state: Restriction, purpose: Purpose
) -> None:
    assert not permits(state, purpose)
    with pytest.raises(ProcessingRestricted) as refused:
        ensure_permitted("s-1", state, purpose)
    assert (refused.value.subject_id, refused.value.state) == ("s-1", state)
    assert f"({state.value})" in str(refused.value)


@pytest.mark.parametrize("state", list(Restriction))
@pytest.mark.parametrize("purpose", sorted(ALLOWED_AFTER_STOP))
def test_a_restricted_subject_still_permits_the_laws_purposes(
    state: Restriction, purpose: Purpose
) -> None:
    assert permits(state, purpose)
    ensure_permitted("s-1", state, purpose)


class Untouchable:
    """A connection that fails the test if it is used."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the database was consulted ({name})")


@pytest.mark.parametrize("purpose", sorted(ALLOWED_AFTER_STOP))
async def test_the_laws_purposes_are_allowed_without_reading_the_state(purpose: Purpose) -> None:
    await check_allowed(Untouchable(), "s-1", purpose)  # type: ignore[arg-type]
