"""The README's allow-list table is the code's (SHR-2): what partners are told is what the
gateway does."""

from __future__ import annotations

from pathlib import Path

import pytest

from expensura_sharing_gateway.partners.domain import ALLOW_LISTS, PartnerKind


@pytest.mark.obligation("SHR-2")
def test_the_readme_states_every_allow_list_as_the_code_has_it() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    stated: dict[tuple[str, str], set[str]] = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0].strip("`") in set(PartnerKind):
            fields = {f.strip("` ") for f in cells[2].split(",")} if "`" in cells[2] else set()
            stated[(cells[0].strip("`"), cells[1].strip("`"))] = fields
    expected = {
        (kind.value, purpose.value): set(fields)
        for kind, purposes in ALLOW_LISTS.items()
        for purpose, fields in purposes.items()
    } | {(kind.value, "—"): set() for kind, purposes in ALLOW_LISTS.items() if not purposes}
    assert stated == expected
