"""`@enforces` records where an obligation is enforced, and nothing else."""

from __future__ import annotations

import pytest

from expensura_events.obligations import enforced_by, enforces


@enforces("RUL-3", "SHR-2")
def _rule(x: int) -> int:
    return x + 1


def test_the_mark_records_the_code_and_leaves_it_unchanged() -> None:
    assert _rule(1) == 2
    found = enforced_by()
    for ob in ("RUL-3", "SHR-2"):
        [mark] = [e for e in found[ob] if e.where.endswith(":_rule")]
        assert mark.file.endswith("test_enforces.py") and mark.line > 0


def test_an_id_that_is_not_an_obligation_id_is_refused() -> None:
    with pytest.raises(ValueError, match="not an obligation id"):
        enforces("shr-1")
