"""pytest fixtures: real PostgreSQL, a real Kafka-protocol broker, and provisioned stacks.

PostgreSQL comes from DATABASE_URL when set (CI may point at the machine's server), else
the embedded server `make run` uses. The broker comes from KAFKA_BOOTSTRAP_SERVERS, else
Tansu, as in `make run`. Every test session provisions its own database namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from expensura_events.db import async_url, drop_databases_named
from expensura_ops.devstack.broker import TansuBroker
from expensura_ops.devstack.paths import var_dir
from expensura_ops.devstack.postgres import EmbeddedPostgres
from expensura_ops.testing.otlp import SandboxCollector
from expensura_ops.testing.stack import TEMPLATES, LocalStack, free_port

# Every stack this session provisioned: the last test searches their logs and topics for
# personal values (`tests/e2e/test_nothing_personal_outside_sealed_fields.py`).
SESSION_STACKS: list[LocalStack] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "runs_last: runs after every other test of the session (it inspects them)"
    )
    config.addinivalue_line(
        "markers",
        "runs_first: a long test that starts before the others, so that under xdist it runs"
        " beside them instead of alone after them",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `runs_first` go to the front (xdist hands the first tests out first);
    tests marked `runs_last` go to the end, whatever paths the run was given; those that
    run once per worker (below) go after them."""

    def place(item: pytest.Item) -> tuple[bool, bool, bool]:
        first = item.get_closest_marker("runs_first") is not None
        last = item.get_closest_marker("runs_last") is not None
        return not first, last, last and "session_worker" in getattr(item, "fixturenames", ())

    items.sort(key=place)


# Under pytest-xdist (`make test` runs `-n 2`) every worker is a session of its own, with its
# own shared stack, broker and recorded personal values; a `runs_last` test inspects its own
# session. So a `runs_last` test that takes `session_worker` runs once per worker, and the
# scheduler below hands each copy to its worker after everything else that worker ran.
def session_workers() -> list[str]:
    """The sessions of this run: one per xdist worker, or the single `main` one."""
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    return [f"gw{n}" for n in range(count)] or ["main"]


def current_session_worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "session_worker" in metafunc.fixturenames:
        metafunc.parametrize("session_worker", session_workers(), ids=lambda w: f"on-{w}")


_ON_WORKER = re.compile(r"\[(?:.*-)?on-(gw\d+)\]$")


def worker_of_last_test(nodeid: str) -> str | None:
    """The worker a per-worker last test belongs to, from its id (`…[on-gw1]`)."""
    match = _ON_WORKER.search(nodeid)
    return match.group(1) if match else None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScheduling

    if config.getoption("dist") != "load":
        return None

    class EachWorkerEndsWithItsLastTests(LoadScheduling):  # type: ignore[misc]
        """xdist's load scheduling of every other test; each worker is sent its own copies
        of the per-worker last tests as it is told to shut down (whichever path tells it: a
        worker runs what it was sent in order, so they run after all else it ran)."""

        def __init__(self, config: pytest.Config, log: Any) -> None:
            super().__init__(config, log)
            self.last_of_worker: dict[str, list[int]] | None = None

        def add_node(self, node: Any) -> None:
            super().add_node(node)
            shutdown = node.shutdown

            def send_its_last_tests_then_shut_down() -> None:
                last = (self.last_of_worker or {}).pop(node.gateway.id, [])
                if last and not node.shutting_down:
                    self.node2pending[node].extend(last)
                    node.send_runtest_some(last)
                shutdown()

            node.shutdown = send_its_last_tests_then_shut_down

        def add_node_collection(self, node: Any, collection: Any) -> None:
            ordinary = [nodeid for nodeid in collection if worker_of_last_test(nodeid) is None]
            # `runs_last` sorted them to the end, so the ordinary tests' indices are unchanged.
            assert list(collection[: len(ordinary)]) == ordinary, "last tests are not last"
            if self.last_of_worker is None:
                self.last_of_worker = {}
                for index, nodeid in enumerate(collection):
                    if (worker := worker_of_last_test(nodeid)) is not None:
                        self.last_of_worker.setdefault(worker, []).append(index)
            super().add_node_collection(node, ordinary)

    return EachWorkerEndsWithItsLastTests(config, log)


LOG_TAIL_LINES = 80


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """A failed test that ran service processes reports the end of each one's log: a CI
    failure (a timeout, a process that died) is then diagnosable from CI's output alone.
    The logs carry no personal data (the last test of the session searches them)."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for value in getattr(item, "funcargs", {}).values():
        if not isinstance(value, LocalStack):
            continue
        for sp in value.processes.values():
            with contextlib.suppress(OSError):
                tail = sp.log().splitlines()[-LOG_TAIL_LINES:]
                report.sections.append((f"log of {sp.log_path.name} (end)", "\n".join(tail)))


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield async_url(url)
        asyncio.run(drop_databases_named(async_url(url), TEMPLATES))
        return
    # Under the project's var/ rather than pytest's tmp: when run as root the server runs as
    # an unprivileged user, who cannot traverse root's private temporary directory.
    where = var_dir() / "tmp" / f"pg-{uuid.uuid4().hex[:8]}"
    server = EmbeddedPostgres(
        where / "data", port=free_port(), settings={"max_connections": "300", "fsync": "off"}
    )
    url = server.start()
    try:
        yield url
    finally:
        server.stop()
        shutil.rmtree(where, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield servers
        return
    broker = TansuBroker(port=free_port())
    broker.start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture
def own_broker() -> Iterator[TansuBroker]:
    """A broker of the test's own, which it may restart (losing all data)."""
    broker = TansuBroker(port=free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def _new_stack(admin_url: str, bootstrap: str, workdir: Path) -> LocalStack:
    stack = LocalStack(admin_url, bootstrap, workdir)
    await stack.provision()
    SESSION_STACKS.append(stack)
    return stack


@pytest.fixture(scope="session")
def span_collector() -> Iterator[SandboxCollector]:
    """The OTLP collector the shared stack's services export their spans to."""
    collector = SandboxCollector().start()
    try:
        yield collector
    finally:
        collector.stop()


@pytest.fixture(scope="session")
async def stack(
    pg_admin_url: str,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    span_collector: SandboxCollector,
) -> AsyncIterator[LocalStack]:
    """The session's shared stack: provisioned, all five services running, exporting
    their spans to `span_collector` (also when a test restarts one)."""
    s = await _new_stack(pg_admin_url, kafka_bootstrap, tmp_path_factory.mktemp("stack"))
    for env in s.env.values():
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = span_collector.endpoint
        env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
    s.start_all()
    try:
        yield s
    finally:
        s.stop_all()
        await s.drop()


@pytest.fixture
async def fresh_stack(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[LocalStack]:
    """A provisioned stack of the test's own, with no process started."""
    s = await _new_stack(pg_admin_url, kafka_bootstrap, tmp_path / "stack")
    try:
        yield s
    finally:
        s.stop_all()
        await s.drop()


@pytest.fixture
async def isolated_stack(
    pg_admin_url: str, own_broker: TansuBroker, tmp_path: Path
) -> AsyncIterator[LocalStack]:
    """A provisioned stack on the test's own broker, with no process started."""
    s = await _new_stack(pg_admin_url, own_broker.bootstrap_servers, tmp_path / "stack")
    try:
        yield s
    finally:
        s.stop_all()
        await s.drop()
