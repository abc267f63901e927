"""For tests that start the README's run command as a user does: on a port range of its own
(`EXPENSURA_PORT_OFFSET`, so it runs beside another stack), in a home of its own under
var/, and with none of the caller's URLs or settings, so that it starts its own PostgreSQL
and broker."""

from __future__ import annotations

import os
import random
import socket
import uuid
from pathlib import Path

from expensura_ops import stack
from expensura_ops.devstack import paths


def is_free(port: int, address: str = "127.0.0.1") -> bool:
    """Nothing listens on the port, and a server could bind it now: a port above 32768 may
    be the local end of some process's outgoing connection, which no listener shows (CI
    once saw the embedded PostgreSQL refused such a port). Bound as the servers bind
    (SO_REUSEADDR), so a closed listener's connections in TIME_WAIT do not count."""
    with socket.socket() as s:
        if s.connect_ex((address, port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def free_offset() -> int:
    """A port offset at which every port of the stack is free."""
    for _ in range(50):
        offset = random.randrange(2000, 20000, 10)
        if all(p < 65536 and is_free(p) for p in stack.ports(offset)):
            return offset
    raise RuntimeError("no free port range")


def new_home(prefix: str) -> Path:
    """A fresh EXPENSURA_HOME under the project's var/ (the embedded PostgreSQL's OS user
    must be able to traverse it, which a pytest tmp dir under /tmp may not allow)."""
    home = paths.var_dir() / "tmp" / f"{prefix}-{uuid.uuid4().hex[:8]}"
    home.mkdir(parents=True)
    return home


def user_environment(home: Path, offset: int) -> dict[str, str]:
    """This process's environment as a user's shell would have it: no database or broker
    URL, no Expensura or OpenTelemetry setting, no make of ours around it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "MAKEFLAGS", "MAKELEVEL")
        and not k.startswith(("EXPENSURA_", "OTEL_"))
    }
    return env | {"EXPENSURA_HOME": str(home), stack.PORT_OFFSET_ENV: str(offset)}
