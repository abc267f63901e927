"""The compliance matrix from a fake marker registry and fake test outcomes: rows, statuses,
warnings, unknown IDs refused, and what the printed table shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from expensura_events.obligations import Enforcement
from expensura_ops.compliance import (
    UnknownObligation,
    build_rows,
    check_known,
    enforced_nowhere,
    print_matrix,
    proven_by_no_test,
)

ROOT = Path("/repo")
GATE = Enforcement("USE-1", "svc.loans.domain:decide", "/repo/svc/loans/domain.py", 42)
SEAL = Enforcement("SEC-1", "lib.cipher:FieldCipher.encrypt_fields", "/repo/lib/cipher.py", 7)
MAPPER = Enforcement("SEC-1", "lib.mapper:EventMapper.seal_payload", "/repo/lib/mapper.py", 3)
SHRED = Enforcement("RGT-3", "lib.shredding:shred_subject", "/elsewhere/shredding.py", 9)
REGISTRY = {"USE-1": [GATE], "SEC-1": [SEAL, MAPPER], "RGT-3": [SHRED]}


def entry(oid: str, *tests: tuple[str, str]) -> dict[str, Any]:
    return {
        "id": oid,
        "owner": "someone",
        "must": "…",
        "tests": [{"nodeid": n, "outcome": o} for n, o in tests],
    }


REPORT = [
    entry("USE-1", ("t.py::test_refused", "passed"), ("t.py::test_limits[0-12]", "passed")),
    entry("SEC-1", ("t.py::test_sealed", "failed")),
    entry("COL-1", ("t.py::test_devices", "passed")),
    entry("RGT-3"),
    entry("SHR-4"),
]


def test_each_obligation_gets_its_enforcing_code_tests_and_status() -> None:
    rows = {r.id: r for r in build_rows(REPORT, REGISTRY)}
    assert [r.id for r in build_rows(REPORT, REGISTRY)] == [
        "USE-1",
        "SEC-1",
        "COL-1",
        "RGT-3",
        "SHR-4",
    ]
    assert rows["USE-1"].enforced_in == (GATE,) and rows["USE-1"].status == "PROVEN"
    assert rows["SEC-1"].enforced_in == (SEAL, MAPPER)  # by file, then line
    assert rows["SEC-1"].status == "FAILING"
    assert rows["COL-1"].enforced_in == () and rows["COL-1"].status == "PROVEN"
    assert rows["RGT-3"].status == "UNPROVEN" and rows["SHR-4"].status == "UNPROVEN"


def test_collect_only_tags_instead_of_proving() -> None:
    rows = {r.id: r for r in build_rows(REPORT, REGISTRY, collect_only=True)}
    assert rows["SEC-1"].status == "TAGGED" and rows["SHR-4"].status == "UNPROVEN"


def test_a_test_that_did_not_run_does_not_prove() -> None:
    [row] = build_rows([entry("USE-1", ("a::x", "passed"), ("a::y", "not run"))], REGISTRY)
    assert row.status == "FAILING"


def test_warnings_name_the_gaps_between_code_and_tests() -> None:
    rows = build_rows(REPORT, REGISTRY)
    assert enforced_nowhere(rows) == ["COL-1"]
    assert proven_by_no_test(rows) == ["RGT-3"]


def test_a_marker_with_an_id_not_in_the_catalog_is_refused() -> None:
    check_known(REGISTRY, ["USE-1", "SEC-1", "RGT-3", "COL-1"])
    typo = Enforcement("USE-99", "svc.x:f", "/repo/svc/x.py", 1)
    with pytest.raises(UnknownObligation, match=r"USE-99 on svc\.x:f \(/repo/svc/x\.py:1\)"):
        check_known({**REGISTRY, "USE-99": [typo]}, ["USE-1", "SEC-1", "RGT-3"])


def test_the_printed_matrix_shows_where_and_which_tests_and_the_warnings() -> None:
    console = Console(record=True, width=250, color_system=None)
    code = print_matrix(build_rows(REPORT, REGISTRY), root=ROOT, console=console)
    out = console.export_text()
    assert code == 1  # SEC-1's test failed
    assert "svc.loans.domain:decide" in out and "svc/loans/domain.py:42" in out
    assert "/elsewhere/shredding.py:9" in out  # outside the root: shown as it is
    assert "test_refused [passed]" in out and "test_sealed [failed]" in out
    assert "test_limits[0-12] [passed]" in out  # brackets are text, not markup
    assert "proven by tests but enforced nowhere (no @enforces): COL-1" in out
    assert "enforced but proven by no test: RGT-3" in out
    assert "2 proven, 1 failing, 2 unproven of 5 obligations" in out


def test_all_proven_exits_zero() -> None:
    console = Console(record=True, width=250, color_system=None)
    rows = build_rows([entry("USE-1", ("t::a", "passed"))], REGISTRY)
    assert print_matrix(rows, root=ROOT, console=console) == 0
