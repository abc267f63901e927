"""Where the local stack keeps its state: the project root and its `var/` directory."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "EXPENSURA_HOME"


def project_root(start: Path | None = None) -> Path:
    """The project's root directory.

    `$EXPENSURA_HOME` if set; else the nearest directory at or above `start` (default: the
    current directory) holding both a `Makefile` and a `libs/` directory, so that commands
    run from any sub-directory share one `var/`; else `start` itself.
    """
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Makefile").is_file() and (candidate / "libs").is_dir():
            return candidate
    return here


def var_dir(root: Path | None = None) -> Path:
    """The directory for local state (databases, logs); ignored by git. Not created here."""
    return (root or project_root()) / "var"


def postgres_data_dir(root: Path | None = None) -> Path:
    """The embedded PostgreSQL's data directory, kept between runs."""
    return var_dir(root) / "postgres"
