"""The local stack's parts, for real: embedded PostgreSQL, Tansu, and the honcho supervisor.

(Where the project lives and how database URLs are read are unit tests: unit/.)"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from expensura_ops.devstack import postgres, supervisor
from expensura_ops.devstack.broker import TansuBroker, broker_answers, command_line, list_topics
from expensura_ops.devstack.postgres import (
    EmbeddedPostgres,
    postgres_available_at,
)

IS_ROOT = os.geteuid() == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A temporary directory that other users can traverse (unlike pytest's tmp_path as root),
    so that as root the server runs through `runuser`, the way `make run` does."""
    path = Path(tempfile.mkdtemp(prefix="expensura-devstack-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pg_factory() -> Iterator[list[EmbeddedPostgres]]:
    """Servers a test started; stopped afterwards even if the test fails."""
    servers: list[EmbeddedPostgres] = []
    yield servers
    for server in servers:
        server.stop()


async def fetch(url: str, query: str) -> object:
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


# -- embedded PostgreSQL ------------------------------------------------------------------------


async def test_embedded_postgres_starts_keeps_data_and_stops(
    open_dir: Path, pg_factory: list[EmbeddedPostgres]
) -> None:
    port = free_port()
    server = EmbeddedPostgres(open_dir / "postgres", port)
    pg_factory.append(server)

    url = server.start()
    assert url == f"postgresql+asyncpg://expensura@127.0.0.1:{port}/postgres"
    assert server.log_file == open_dir / "postgres.log"
    assert await fetch(url, "select current_user") == "expensura"
    assert await fetch(url, "show server_encoding") == "UTF8"
    assert await fetch(url, "create database kept") is None
    kept = url.replace("/postgres", "/kept")
    assert await fetch(kept, "create table t as select 42 as answer") is None

    pid = (server.data_dir / "postmaster.pid").read_text().split()[0]
    assert EmbeddedPostgres(open_dir / "postgres", port).start() == url  # reused, not restarted
    assert (server.data_dir / "postmaster.pid").read_text().split()[0] == pid

    server.stop()
    assert not server.is_running()
    assert not postgres_available_at(url, timeout=1.0)

    server.start()
    assert await fetch(kept, "select answer from t") == 42
    server.stop()
    server.stop()  # idempotent


async def test_embedded_postgres_in_a_private_directory(
    tmp_path: Path, pg_factory: list[EmbeddedPostgres]
) -> None:
    # As root, pytest's tmp_path is below /tmp/pytest-of-root (mode 700), which the postgres
    # user cannot enter: the server must still start (in a user namespace).
    server = EmbeddedPostgres(tmp_path / "data", free_port())
    pg_factory.append(server)
    url = server.start()
    assert postgres_available_at(url)
    assert await fetch(url, "select 1") == 1


@pytest.mark.skipif(not IS_ROOT, reason="only root runs the server as another user")
async def test_binaries_copied_where_the_server_user_can_run_them(
    open_dir: Path, pg_factory: list[EmbeddedPostgres], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A venv below a directory closed to other users (e.g. /root/project/.venv).
    real = postgres._package_dir()
    private = Path(tempfile.mkdtemp(prefix="expensura-private-"))  # mode 700
    try:
        (private / "embedded_postgres").symlink_to(real)
        (private / "embedded_postgres.libs").symlink_to(real.with_name("embedded_postgres.libs"))
        monkeypatch.setattr(postgres, "_package_dir", lambda: private / "embedded_postgres")

        server = EmbeddedPostgres(open_dir / "postgres", free_port())
        pg_factory.append(server)
        url = server.start()
        assert server._binaries().is_relative_to(open_dir)  # the copy beside the data dir
        assert await fetch(url, "select 1") == 1
    finally:
        shutil.rmtree(private)


# -- Tansu --------------------------------------------------------------------------------------


async def test_tansu_round_trip_and_restart_loses_everything(tmp_path: Path) -> None:
    port = free_port()
    assert command_line(port)[1:4] == ["broker", "--listener-url", f"tcp://127.0.0.1:{port}"]
    with TansuBroker(port, log_file=tmp_path / "tansu.log") as broker:
        servers = broker.bootstrap_servers
        assert servers == f"127.0.0.1:{port}"

        admin = AIOKafkaAdminClient(bootstrap_servers=servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic("devstack.test", 2, 1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait("devstack.test", b"hello", key=b"k")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            "devstack.test", bootstrap_servers=servers, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 10)
        finally:
            await consumer.stop()
        assert (record.key, record.value) == (b"k", b"hello")
        assert "devstack.test" in list_topics(servers)

        assert broker.restart() == servers
        assert "devstack.test" not in list_topics(servers)
    assert not port_open(port)


# -- supervisor ---------------------------------------------------------------------------------


@pytest.fixture
def no_external_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(supervisor.DATABASE_URL_ENV, raising=False)
    monkeypatch.delenv(supervisor.KAFKA_ENV, raising=False)


@pytest.mark.usefixtures("no_external_servers")
def test_run_stack_provisions_then_starts_processes_and_cleans_up(open_dir: Path) -> None:
    calls: list[tuple[str, str]] = []

    async def provision(admin_url: str, bootstrap: str) -> dict[str, dict[str, str]]:
        calls.append((admin_url, bootstrap))
        assert await asyncio.to_thread(broker_answers, bootstrap), "provisioned before ready"
        return {}

    pg_port, broker_port = free_port(), free_port()
    output = io.StringIO()
    marker = [sys.executable, "-c", "import os; print('sandbox says', os.environ['GREETING'])"]
    returncode = supervisor.run_stack(
        provision,
        extra_processes={"sandbox": (marker, {"GREETING": "hello"})},
        services=(),  # the services themselves are not this library's to test
        root=open_dir,
        postgres_port=pg_port,
        broker_port=broker_port,
        output=output,
    )
    text = output.getvalue()
    assert returncode == 0, text
    assert calls == [(postgres.admin_url(pg_port), f"127.0.0.1:{broker_port}")]
    assert "sandbox says hello" in text
    assert "Expensura local stack" in text and f"127.0.0.1:{broker_port}" in text
    assert not port_open(broker_port), "honcho stopped Tansu"
    assert not EmbeddedPostgres(open_dir / "var" / "postgres", pg_port).is_running()


@pytest.mark.usefixtures("no_external_servers")
def test_run_stack_reports_a_failed_provisioning_after_stopping_everything(
    open_dir: Path,
) -> None:
    def provision(admin_url: str, bootstrap: str) -> dict[str, dict[str, str]]:
        raise RuntimeError("migration failed")

    pg_port, broker_port = free_port(), free_port()
    with pytest.raises(RuntimeError, match="migration failed"):
        supervisor.run_stack(
            provision,
            services=(),
            root=open_dir,
            postgres_port=pg_port,
            broker_port=broker_port,
            output=io.StringIO(),
        )
    assert not port_open(broker_port)
    assert not port_open(pg_port)
