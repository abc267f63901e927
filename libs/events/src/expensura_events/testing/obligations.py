"""pytest plugin: `@pytest.mark.obligation("SHR-1", …)` ties a test to the policy's promises.

Loaded for every run (root pyproject `addopts`). It refuses IDs that are not in the catalog
(docs/spec/obligations.md), so a typo cannot fake coverage, and with
`--obligations-report PATH` writes, for every obligation, the tests that prove it and how
they ended. `expensura compliance` turns that into the matrix.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

CATALOG_RELATIVE = Path("docs/spec/obligations.md")
_ROW = re.compile(r"^\|\s*([A-Z]{3}-\d+)\s*\|(.+)\|\s*([^|]+?)\s*\|\s*$")
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


@dataclass(frozen=True)
class Obligation:
    id: str
    text: str
    owner: str


def find_catalog(start: Path) -> Path:
    for directory in (start, *start.parents):
        candidate = directory / CATALOG_RELATIVE
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{CATALOG_RELATIVE} not found above {start}")


def load_catalog(path: Path) -> list[Obligation]:
    """Rows `| ID | the policy says | the system must | owner |` (USE rows have 5 cells)."""
    out: list[Obligation] = []
    for line in path.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            cells = [c.strip() for c in match.group(2).split("|")]
            out.append(Obligation(match.group(1), cells[-1] if cells else "", match.group(3)))
    return out


def obligation_ids(item: pytest.Item) -> list[str]:
    return [str(arg) for mark in item.iter_markers("obligation") for arg in mark.args]


class ObligationPlugin:
    def __init__(self, catalog: list[Obligation], report: Path | None) -> None:
        self.catalog = catalog
        self.known = {o.id for o in catalog}
        self.report = report
        self.tagged: dict[str, list[str]] = {}
        self.outcomes: dict[str, str] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        unknown = sorted(
            {(i.nodeid, o) for i in items for o in obligation_ids(i) if o not in self.known}
        )
        if unknown:
            listed = ", ".join(f"{o} on {node}" for node, o in unknown)
            raise pytest.UsageError(f"unknown obligation IDs (not in the catalog): {listed}")
        for item in items:
            for oid in obligation_ids(item):
                self.tagged.setdefault(oid, []).append(item.nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            outcome: str = report.outcome
            if report.when != "call" and report.outcome == "failed":
                outcome = "error"
            previous = self.outcomes.get(report.nodeid, "passed")
            if report.nodeid not in self.outcomes or _RANK[outcome] > _RANK[previous]:
                self.outcomes[report.nodeid] = outcome

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.report is None:
            return
        rows = [
            {
                "id": o.id,
                "owner": o.owner,
                "must": o.text,
                "tests": [
                    {"nodeid": n, "outcome": self.outcomes.get(n, "not run")}
                    for n in self.tagged.get(o.id, [])
                ],
            }
            for o in self.catalog
        ]
        self.report.write_text(json.dumps({"obligations": rows}, indent=2))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--obligations-report",
        type=Path,
        default=None,
        help="write obligation -> tests -> outcome as JSON to this path",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "obligation(*ids): the obligation IDs from the catalog that this test proves"
    )
    catalog = load_catalog(find_catalog(Path(config.rootpath)))
    config.pluginmanager.register(
        ObligationPlugin(catalog, config.getoption("--obligations-report")), "expensura-obligations"
    )
