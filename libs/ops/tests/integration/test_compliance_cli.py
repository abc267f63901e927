"""`expensura compliance --collect-only` end to end on a small selection of tests: the
markers of the library and the installed services, the tagged tests, the warnings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]


def test_collect_only_prints_where_each_obligation_is_enforced_and_its_tests() -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("expensura")),
            "compliance",
            "--collect-only",
            "services/loans/tests/unit",
        ],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "300"},  # one table row per line, nothing folded
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr
    lines = out.splitlines()
    [start] = [i for i, line in enumerate(lines) if line.startswith("│ USE-1 ")]
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(("├", "└")))
    use1 = "\n".join(lines[start:end])  # the whole row: one obligation, several enforcers
    # a service's marker, found through its entry point, with the tests tagged USE-1
    assert "expensura_loans.applications.domain:decide" in use1
    assert "test_without_verification_an_application_is_refused" in use1
    assert "TAGGED" in use1
    assert "services/loans/src/expensura_loans/applications/domain.py:" in out
    # the library's markers, though no selected test imports them
    assert "expensura_events.cipher:FieldCipher.encrypt_fields" in out
    assert "expensura_events.privacy.restrictions:check_allowed" in out
    assert "libs/events/src/expensura_events/chain.py:" in out
    # SEC-3 is enforced (checkpoints), but no selected test proves it
    [enforced] = [line for line in out.splitlines() if "enforced but proven by no test" in line]
    unproven = enforced.split(":", 1)[1].replace(",", " ").split()  # ids, not substrings
    assert "SEC-3" in unproven and "USE-1" not in unproven
