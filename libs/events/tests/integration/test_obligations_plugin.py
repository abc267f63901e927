"""The obligation marker and the report `expensura compliance` is built from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CATALOG = Path(__file__).resolve().parents[4] / "docs" / "spec" / "obligations.md"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    (pytester.path / "docs" / "spec").mkdir(parents=True)
    shutil.copy(CATALOG, pytester.path / "docs" / "spec" / "obligations.md")
    return pytester


def _run(p: pytest.Pytester, *args: str) -> pytest.RunResult:
    return p.runpytest_subprocess(
        "-p", "expensura_events.testing.obligations", "-p", "no:cacheprovider", *args
    )


def test_report_lists_each_obligation_with_its_tests_and_outcomes(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_x="""
        import pytest

        @pytest.mark.obligation("SHR-1", "SHR-2")
        def test_proves(): assert True

        @pytest.mark.obligation("SHR-2")
        def test_breaks(): assert False

        @pytest.fixture
        def broken(): raise RuntimeError("setup")

        @pytest.mark.obligation("SEC-3")
        def test_errors(broken): pass
    """
    )
    report = project.path / "report.json"
    _run(project, f"--obligations-report={report}")
    rows = {r["id"]: r for r in json.loads(report.read_text())["obligations"]}
    assert [t["outcome"] for t in rows["SHR-1"]["tests"]] == ["passed"]
    assert sorted(t["outcome"] for t in rows["SHR-2"]["tests"]) == ["failed", "passed"]
    assert [t["outcome"] for t in rows["SEC-3"]["tests"]] == ["error"]
    assert rows["COL-1"]["tests"] == []  # listed, unproven
    assert rows["SHR-1"]["owner"] == "sharing-gateway"


def test_an_id_not_in_the_catalog_is_refused(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_y="""
        import pytest

        @pytest.mark.obligation("SHR-99")
        def test_typo(): pass
    """
    )
    result = _run(project)
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*unknown obligation IDs*SHR-99*"])
