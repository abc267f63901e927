"""`expensura compliance`: obligation → where enforced → proving tests → result.

Tests say which obligation they prove (`@pytest.mark.obligation`; the pytest plugin
`expensura_events.testing.obligations` reports them with their outcomes). Code says which it
enforces (`@enforces`, recorded when its module is imported): this imports every module of
the library and of every installed service, so that every marker has run, and joins the two
for every obligation of the catalog (`docs/spec/obligations.md`).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from expensura_events.obligations import Enforcement, enforced_by
from expensura_events.testing.obligations import find_catalog, load_catalog
from expensura_ops.services import service_packages

STATUS_STYLE = {"PROVEN": "green", "FAILING": "red", "UNPROVEN": "yellow", "TAGGED": "cyan"}
LIBRARY = "expensura_events"
# Alembic revisions and test helpers enforce nothing; importing revisions outside Alembic
# would also run their module code for no reason.
SKIPPED = {"migrations", "testing"}


class UnknownObligation(ValueError):
    """An `@enforces` names an ID the catalog does not have."""


@dataclass(frozen=True)
class ProvingTest:
    nodeid: str
    outcome: str  # passed, failed, error, skipped, not run


@dataclass(frozen=True)
class Row:
    id: str
    owner: str
    enforced_in: tuple[Enforcement, ...]
    tests: tuple[ProvingTest, ...]
    status: str


# -- the enforcing code ------------------------------------------------------------------------


def import_every_module(packages: Iterable[str]) -> None:
    """Import each package and all its modules, so that every `@enforces` has run."""
    for name in packages:
        package = importlib.import_module(name)
        for found in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if SKIPPED.isdisjoint(found.name.split(".")[1:]):
                importlib.import_module(found.name)


def enforcements(packages: Iterable[str] | None = None) -> dict[str, list[Enforcement]]:
    """Obligation id → the code marked as enforcing it, in the library and every service."""
    import_every_module([LIBRARY, *service_packages()] if packages is None else packages)
    return enforced_by()


def check_known(enforced: Mapping[str, Sequence[Enforcement]], known: Iterable[str]) -> None:
    """Refuse markers with IDs not in the catalog: a typo must not fake enforcement."""
    catalog = set(known)
    unknown = [e for oid, marks in enforced.items() if oid not in catalog for e in marks]
    if unknown:
        listed = "; ".join(f"{e.obligation} on {e.where} ({e.file}:{e.line})" for e in unknown)
        raise UnknownObligation(f"@enforces names obligations not in the catalog: {listed}")


# -- joining code and tests ----------------------------------------------------------------------


def status_of(tests: Sequence[ProvingTest], collect_only: bool) -> str:
    if not tests:
        return "UNPROVEN"
    if collect_only:
        return "TAGGED"
    if any(t.outcome in ("failed", "error", "not run") for t in tests):
        return "FAILING"
    return "PROVEN" if any(t.outcome == "passed" for t in tests) else "UNPROVEN"


def _by_place(e: Enforcement) -> tuple[str, int]:
    return e.file, e.line


def build_rows(
    report: Sequence[Mapping[str, Any]],
    enforced: Mapping[str, Sequence[Enforcement]],
    *,
    collect_only: bool = False,
) -> list[Row]:
    """One row per obligation of the plugin's report, in catalog order."""
    rows = []
    for entry in report:
        tests = tuple(ProvingTest(t["nodeid"], t["outcome"]) for t in entry["tests"])
        rows.append(
            Row(
                id=entry["id"],
                owner=entry["owner"],
                enforced_in=tuple(sorted(enforced.get(entry["id"], ()), key=_by_place)),
                tests=tests,
                status=status_of(tests, collect_only),
            )
        )
    return rows


def enforced_nowhere(rows: Sequence[Row]) -> list[str]:
    return [r.id for r in rows if r.tests and not r.enforced_in]


def proven_by_no_test(rows: Sequence[Row]) -> list[str]:
    return [r.id for r in rows if r.enforced_in and not r.tests]


# -- printing ----------------------------------------------------------------------------------


def _relative(file: str, root: Path) -> str:
    path = Path(file)
    return str(path.relative_to(root)) if path.is_relative_to(root) else file


def _where(e: Enforcement, root: Path) -> str:
    return f"{escape(e.where)}\n[dim]{escape(_relative(e.file, root))}:{e.line}[/dim]"


def _test(t: ProvingTest, collect_only: bool) -> str:
    # Escaped: a parametrised test's id and the outcome are in brackets, which rich would
    # otherwise read as markup and drop.
    name = t.nodeid.split("::")[-1]
    return escape(name if collect_only else f"{name} [{t.outcome}]")


def print_matrix(
    rows: Sequence[Row],
    *,
    collect_only: bool = False,
    root: Path | None = None,
    console: Console | None = None,
) -> int:
    """Print the matrix and the warnings; non-zero if a proving test failed."""
    root = (root or Path.cwd()).resolve()
    console = console or Console(width=max(120, Console().width))
    table = Table("obligation", "owner", "enforced in", "proving tests", "status", show_lines=True)
    table.columns[2].overflow = table.columns[3].overflow = "fold"
    counts = dict.fromkeys(STATUS_STYLE, 0)
    for row in rows:
        counts[row.status] += 1
        table.add_row(
            row.id,
            row.owner,
            "\n".join(_where(e, root) for e in row.enforced_in) or "-",
            "\n".join(_test(t, collect_only) for t in row.tests) or "-",
            f"[{STATUS_STYLE[row.status]}]{row.status}",
        )
    console.print(table)
    proven_word = "tagged on tests" if collect_only else "proven by tests"
    for ids, what in (
        (enforced_nowhere(rows), f"{proven_word} but enforced nowhere (no @enforces)"),
        (proven_by_no_test(rows), "enforced but proven by no test"),
    ):
        if ids:
            console.print(f"[yellow]warning:[/yellow] {what}: {', '.join(ids)}")
    console.print(
        ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n)
        + f" of {len(rows)} obligations"
    )
    return 1 if counts["FAILING"] else 0


# -- the command -------------------------------------------------------------------------------


def compliance(pytest_args: list[str], *, collect_only: bool = False) -> int:
    """Gather the markers, run (or only collect) the tests, print the matrix. Non-zero if a
    marker names an unknown obligation or a proving test failed."""
    errors = Console(stderr=True)
    enforced = enforcements()
    try:
        check_known(enforced, (o.id for o in load_catalog(find_catalog(Path.cwd()))))
    except UnknownObligation as exc:
        errors.print(f"[red]{exc}")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "obligations.json"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            f"--obligations-report={report}",
            "-q",
            *(["--collect-only"] if collect_only else []),
            *pytest_args,
        ]
        run = subprocess.run(cmd, check=False)
        if not report.exists():
            errors.print("[red]pytest did not produce the obligations report")
            return run.returncode or 1
        entries = json.loads(report.read_text())["obligations"]
    rows = build_rows(entries, enforced, collect_only=collect_only)
    return print_matrix(rows, collect_only=collect_only)
