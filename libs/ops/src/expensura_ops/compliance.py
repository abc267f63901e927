"""`expensura compliance`: obligation → proving tests → pass/fail, for the whole catalog."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

STATUS_STYLE = {"PROVEN": "green", "FAILING": "red", "UNPROVEN": "yellow", "TAGGED": "cyan"}


def compliance(pytest_args: list[str], *, collect_only: bool = False) -> int:
    """Run (or only collect) the tests and print the matrix. Non-zero if a tagged test failed."""
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
            Console(stderr=True).print("[red]pytest did not produce the obligations report")
            return run.returncode or 1
        rows = json.loads(report.read_text())["obligations"]
    return print_matrix(rows, collect_only=collect_only)


def status_of(tests: list[dict[str, str]], collect_only: bool) -> str:
    if not tests:
        return "UNPROVEN"
    if collect_only:
        return "TAGGED"
    if any(t["outcome"] in ("failed", "error", "not run") for t in tests):
        return "FAILING"
    return "PROVEN" if any(t["outcome"] == "passed" for t in tests) else "UNPROVEN"


def print_matrix(rows: list[dict[str, object]], *, collect_only: bool = False) -> int:
    console = Console(width=max(120, Console().width))
    table = Table("obligation", "owner", "proving tests", "status", show_lines=True)
    counts = dict.fromkeys(STATUS_STYLE, 0)
    for row in rows:
        tests = row["tests"]
        assert isinstance(tests, list)
        status = status_of(tests, collect_only)
        counts[status] += 1
        listed = (
            "\n".join(
                f"{t['nodeid'].split('::')[-1]} [{t['outcome']}]"
                if not collect_only
                else t["nodeid"].split("::")[-1]
                for t in tests
            )
            or "-"
        )
        table.add_row(
            str(row["id"]), str(row["owner"]), listed, f"[{STATUS_STYLE[status]}]{status}"
        )
    console.print(table)
    console.print(
        ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n)
        + f" of {len(rows)} obligations"
    )
    return 1 if counts["FAILING"] else 0
