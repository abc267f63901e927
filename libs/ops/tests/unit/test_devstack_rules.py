"""Where the local stack keeps its files, and how database URLs are read (no servers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from expensura_ops.devstack import paths, postgres
from expensura_ops.devstack.postgres import normalise_database_url

# -- paths --------------------------------------------------------------------------------------


def test_project_root_from_env_then_markers_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "home"))
    assert paths.project_root() == tmp_path / "home"
    assert paths.var_dir() == tmp_path / "home" / "var"

    monkeypatch.delenv(paths.HOME_ENV)
    project = tmp_path / "project"
    (project / "libs").mkdir(parents=True)
    (project / "Makefile").touch()
    deep = project / "services" / "x"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert paths.project_root() == project
    assert paths.postgres_data_dir() == project / "var" / "postgres"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert paths.project_root(elsewhere) == elsewhere


def test_database_url_normalised_to_asyncpg() -> None:
    assert normalise_database_url("postgresql://u:p@h:5/db") == "postgresql+asyncpg://u:p@h:5/db"
    assert normalise_database_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_database_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert postgres.display_url("postgresql+asyncpg://u:secret@h/db") == (
        "postgresql+asyncpg://u@h/db"
    )
    with pytest.raises(ValueError):
        normalise_database_url("mysql://u@h/db")
