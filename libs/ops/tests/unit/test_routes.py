"""Who may call what, read from the code: every internal route names its callers, and
docs/security.md says exactly what the code declares."""

from __future__ import annotations

from pathlib import Path

import pytest

from expensura_ops.routes import markdown_table, route_access

ROOT = Path(__file__).resolve().parents[4]
BEGIN, END = "<!-- routes:begin -->\n", "<!-- routes:end -->"


@pytest.mark.obligation("SEC-2")
def test_every_internal_route_of_every_service_declares_its_calling_services() -> None:
    rows = route_access()
    internal = [r for r in rows if r.internal]
    assert len({r.service for r in internal}) == 5  # every service was read
    undeclared = [f"{r.service} {r.method} {r.path}" for r in internal if r.who == "anyone"]
    assert not undeclared, "internal routes anyone may call: " + ", ".join(undeclared)


def test_docs_security_lists_every_route_as_the_code_declares_it() -> None:
    doc = (ROOT / "docs" / "security.md").read_text()
    table = doc[doc.index(BEGIN) + len(BEGIN) : doc.index(END)]
    assert table == markdown_table(route_access()), (
        "docs/security.md is out of date: `expensura routes --markdown` prints the table"
    )
