"""The command line reports a failure in one line, without traceback, locals or SQL text."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import (
    AsyncAdapt_asyncpg_connection,
    AsyncAdapt_asyncpg_dbapi,
)

from expensura_ops.cli import describe_failure
from expensura_ops.serve import bind
from expensura_ops.testing.stack import free_port

SECRET = "secret.person@example.com"


def test_a_database_error_is_described_by_class_and_sqlstate_only() -> None:
    refused = asyncpg.exceptions.UniqueViolationError("duplicate key value")
    refused.detail = f"Key (email)=({SECRET}) already exists."
    dbapi = AsyncAdapt_asyncpg_dbapi(asyncpg)
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(dbapi, refused)
    except Exception as adapted:
        wrapped = sa_exc.DBAPIError.instance(
            "INSERT INTO contacts VALUES ($1)", (SECRET,), adapted, dbapi.Error
        )
    assert SECRET in str(wrapped.orig.__cause__)  # what a traceback would have shown
    assert describe_failure(wrapped) == "UniqueViolationError SQLSTATE 23505"


def test_an_unreachable_database_is_one_line_with_a_hint_and_no_traceback(tmp_path: Path) -> None:
    nowhere = "postgresql+asyncpg://nobody:pw@127.0.0.1:1/nothing"
    env = {
        **os.environ,
        "EXPENSURA_DATABASE_URL": nowhere,
        "EXPENSURA_KEYSTORE_URL": nowhere,
        "EXPENSURA_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
    }
    result = subprocess.run(
        [str(Path(sys.executable).with_name("expensura")), "log", "verify", "identity"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "a dependency is unavailable" in line


def test_a_taken_port_is_named_in_the_one_line() -> None:
    """A service that cannot listen says where (a CI log then shows two servers on one port)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        try:
            bind("127.0.0.1", port)
        except OSError as exc:
            taken = exc
        else:
            raise AssertionError("bound a port another socket listens on")
    assert describe_failure(taken) == (
        f"OSError: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


def test_free_ports_are_never_handed_out_twice() -> None:
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
