"""The architecture contracts in pyproject.toml ([tool.importlinter], run by `make lint`) hold
today, and an import that breaks one fails `lint-imports`, naming the contract.

The packages are copied, violations are written into the copies, and `lint-imports` runs
with the copies first on the path and the project's own configuration."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = [
    c["name"] for c in tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["contracts"]
]


def copy_package(name: str, into: Path) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None, name
    target = into / name
    shutil.copytree(Path(spec.origin).parent, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def add_import(module: Path, statement: str) -> None:
    module.write_text(module.read_text() + f"\n{statement}  # a deliberate violation\n")


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(path), "COLUMNS": "300"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", str(CONFIG)],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contracts_hold_for_the_code_as_it_is(tmp_path: Path) -> None:
    for name in ("expensura_events", "expensura_consent", "expensura_identity", "expensura_ops"):
        copy_package(name, tmp_path)
    result = lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for contract in CONTRACTS:
        assert f"{contract} KEPT" in result.stdout


def test_breaking_a_contract_fails_the_lint_and_names_it(tmp_path: Path) -> None:
    events = copy_package("expensura_events", tmp_path)
    consent = copy_package("expensura_consent", tmp_path)
    identity = copy_package("expensura_identity", tmp_path)
    ops = copy_package("expensura_ops", tmp_path)
    add_import(events / "privacy" / "restrictions.py", "import expensura_events.runtime")
    add_import(events / "cipher.py", "import sqlalchemy")
    add_import(consent / "records" / "domain.py", "import httpx")
    add_import(consent / "records" / "store.py", "import expensura_consent.grounds.views")
    add_import(consent / "erasure.py", "import expensura_loans.app")
    add_import(events / "store.py", "import expensura_ops.services")
    add_import(identity / "staff" / "service.py", "from fastapi import Request")
    add_import(ops / "cli.py", "import expensura_identity.staff.service")

    result = lint(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = [c for c in CONTRACTS if f"{c} BROKEN" in result.stdout]
    assert broken == CONTRACTS, result.stdout  # each contract is broken by an import above
    assert "expensura_events.privacy.restrictions -> expensura_events.runtime" in result.stdout
