"""RUL-3's rules without I/O: k never below the floor, people counted (not disclosures),
small cells withheld."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from expensura_sharing_gateway.statistics.domain import (
    K_FLOOR,
    BelowFloor,
    UnknownQuery,
    check_k,
    people_per_cell,
    release,
    released,
    suppress,
)


@pytest.mark.obligation("RUL-3")
@pytest.mark.parametrize("k", [-1, 0, 1, 5, K_FLOOR - 1, 1001])
def test_k_below_the_policys_floor_is_refused_whoever_asks(k: int) -> None:
    with pytest.raises(BelowFloor):
        check_k(k)
    with pytest.raises(BelowFloor):
        release(uuid.uuid4(), "disclosures-by-purpose", k, [])


@pytest.mark.obligation("RUL-3")
def test_cells_under_k_are_withheld_and_counted_as_suppressed() -> None:
    cells, hidden = suppress(Counter({("a",): 12, ("b",): 9, ("c",): 10}), 10)
    assert cells == {("a",): 12, ("b",): None, ("c",): 10}
    assert hidden == 1


@pytest.mark.obligation("RUL-3")
def test_a_cell_counts_people_not_disclosures() -> None:
    # one person disclosed twelve times is one person: withheld
    rows = [("s-1", ("credit-assessment",))] * 12 + [
        (f"s-{i}", ("communication",)) for i in range(10)
    ]
    assert people_per_cell(rows) == Counter({("credit-assessment",): 1, ("communication",): 10})
    made = release(uuid.uuid4(), "disclosures-by-purpose", K_FLOOR, rows)
    assert made.cells == {("credit-assessment",): None, ("communication",): 10}
    assert made.columns == ("purpose",)
    event = released(made)
    assert (event.cells, event.suppressed, event.k) == (2, 1, 10)
    assert event.parameters == {"columns": ["purpose"]}


def test_only_the_declared_queries_run() -> None:
    with pytest.raises(UnknownQuery):
        release(uuid.uuid4(), "subjects-by-name", K_FLOOR, [])
