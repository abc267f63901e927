"""A whole local stack under test control: provisioned databases and real service processes.

Used by the tests and the benchmarks. Each stack lives in its own database namespace, so
several can share one PostgreSQL server; services listen on free ports.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from expensura_events.db import async_url
from expensura_events.service_identity import ServiceIdentity
from expensura_events.settings import ServiceSettings
from expensura_events.topology import KEYSTORE_DATABASE, SERVICES, service
from expensura_ops.provision import new_event_signing_keys, provision
from expensura_ops.sandboxes import (
    CREDIT_BUREAU_APP,
    MESSAGING_APP,
    SMTP_SINK_MODULE,
    VERIFICATION_AGENCY_APP,
    messaging_env,
)
from expensura_ops.sandboxes.smtp_sink import Delivered, delivered, last_code
from expensura_ops.services import service_definitions

T = TypeVar("T")

AGENCY = "verification-agency"
AGENCY_APP = VERIFICATION_AGENCY_APP
SMTP_SINK = "smtp-sink"
CREDIT_BUREAU = "credit-bureau"
MESSAGING = "messaging"
# The sandbox bureau's published subscriber key (expensura_ops.sandboxes.credit_bureau).
CREDIT_BUREAU_KEY = "sandbox-subscriber-key"
# The sandbox bureau's partner id, as a test registers it with the gateway (consent to credit
# assessment names it as the recipient).
CREDIT_BUREAU_PARTNER = "sandbox-credit-bureau"

# Short group timeouts so consumers join in about a second (see infrastructure notes).
FAST_KAFKA = {
    "EXPENSURA_KAFKA_SESSION_TIMEOUT_MS": "2000",
    "EXPENSURA_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
}
# Two partitions per topic, not eight: Tansu's cost of every idle fetch grows with the
# partitions it covers (an idle stack's broker: 0.11 of a core at 8, 0.07 at 2), and two
# still spread subjects over partitions, each applied in its order.
TEST_TOPIC_PARTITIONS = 2

# argon2id at a test cost: the tests exercise what is hashed and when, not the cost itself
# (a unit test holds the production defaults to RFC 9106); at 64 MiB each sign-up would cost
# the two-core test machine tens of milliseconds of CPU.
CHEAP_HASHING = {
    "EXPENSURA_PASSWORD_HASH_TIME_COST": "1",
    "EXPENSURA_PASSWORD_HASH_MEMORY_KIB": "1024",
    "EXPENSURA_PASSWORD_HASH_PARALLELISM": "1",
}

# Chain checkpoints an hour apart: on the session's shared stack, a checkpoint (and its
# witness records in every peer's log) landing inside a test that asserts "the log did not
# move" would fail it by chance. Tests of checkpoints start their services with a short one.
RARE_CHECKPOINTS = {"EXPENSURA_CHECKPOINT_INTERVAL_SECONDS": "3600"}


# This process's prefix for migrated template databases; the tests' PostgreSQL fixture drops
# them at the end of the session.
TEMPLATES = f"expensura_template_{uuid.uuid4().hex[:8]}_"


# The kernel offers a free port (port 0) and may offer it again until its first taker binds
# it: a session never hands out one port twice (CI once saw consent and incident given one).
# Ports are not taken from a fixed range: sessions running side by side on one machine
# would hand out each other's ports (seen: one test's requests answered by another's stack).
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, not handed out before in this session."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("the kernel offered only ports handed out before")


async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Retry `check` until it returns a truthy value or stops raising AssertionError."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = await check()
            if result:
                return result
        except AssertionError as exc:
            last = exc
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: {last!r}")


@dataclass
class ServiceProcess:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    internal_port: int | None = None  # None: a process with one listener (the agency)

    @property
    def url(self) -> str:
        """The public listener: the API the gateways route to."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def internal_url(self) -> str:
        """The internal listener: `/internal/*`, the API documents, what peers read."""
        if self.internal_port is None:
            raise AttributeError(f"{self.name} has no internal listener")
        return f"http://127.0.0.1:{self.internal_port}"

    @property
    def urls(self) -> list[str]:
        return [self.url] if self.internal_port is None else [self.url, self.internal_url]

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to flush or clean up."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class _OperatorAuth(httpx.Auth):
    def __init__(self, headers_for_port: Callable[[int], dict[str, str]]) -> None:
        self.headers_for_port = headers_for_port

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if request.url.path.startswith("/internal/"):  # never replaces a user's token on /v1
            request.headers.update(self.headers_for_port(request.url.port or 80))
        yield request


def settings_from_env(
    settings_class: type[ServiceSettings], env: Mapping[str, str]
) -> ServiceSettings:
    """A service's settings for an in-process runtime (no workers of its own), from the
    environment provisioning wrote for it."""
    return settings_class(
        database_url=env["EXPENSURA_DATABASE_URL"],
        keystore_url=env["EXPENSURA_KEYSTORE_URL"],
        master_key=env["EXPENSURA_MASTER_KEY"],
        event_signing_key=env["EXPENSURA_EVENT_SIGNING_KEY"],
        event_public_keys=json.loads(env["EXPENSURA_EVENT_PUBLIC_KEYS"]),
        kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        topic_namespace=env["EXPENSURA_TOPIC_NAMESPACE"],
        kafka_topic_partitions=int(env["EXPENSURA_KAFKA_TOPIC_PARTITIONS"]),
        service_key=env["EXPENSURA_SERVICE_KEY"],
        service_public_keys=json.loads(env["EXPENSURA_SERVICE_PUBLIC_KEYS"]),
        workers=False,
    )


@dataclass
class LocalStack:
    admin_url: str
    bootstrap_servers: str
    workdir: Path
    namespace: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}_")
    master_key: str = field(default_factory=lambda: base64.b64encode(os.urandom(32)).decode())
    # One Ed25519 event-signing key per service, kept for the stack's life: provisioning
    # again must not orphan what was signed before.
    event_signing_keys: dict[str, str] = field(default_factory=new_event_signing_keys)
    ports: dict[str, int] = field(
        default_factory=lambda: (
            {s.name.value: free_port() for s in SERVICES}
            | {
                AGENCY: free_port(),
                SMTP_SINK: free_port(),
                CREDIT_BUREAU: free_port(),
                MESSAGING: free_port(),
            }
        )
    )
    internal_ports: dict[str, int] = field(
        default_factory=lambda: {s.name.value: free_port() for s in SERVICES}
    )
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    # Databases are copies of templates migrated once per test process (provision.py);
    # None: migrate each database itself.
    templates: str | None = TEMPLATES

    async def provision(self, extra_env: Mapping[str, str] | None = None) -> None:
        self.env = await provision(
            self.admin_url,
            self.bootstrap_servers,
            master_key=self.master_key,
            event_signing_keys=self.event_signing_keys,
            namespace=self.namespace,
            ports=self.ports,
            internal_ports=self.internal_ports,
            extra_env=FAST_KAFKA
            | CHEAP_HASHING
            | RARE_CHECKPOINTS
            | {
                "EXPENSURA_VERIFICATION_AGENCY_URL": self.agency_url,
                "EXPENSURA_SMTP_URL": f"smtp://127.0.0.1:{self.ports[SMTP_SINK]}",
                "EXPENSURA_CREDIT_BUREAU_URL": self.credit_bureau_url,
                "EXPENSURA_CREDIT_BUREAU_KEY": CREDIT_BUREAU_KEY,
                "EXPENSURA_CREDIT_BUREAU_PARTNER_ID": CREDIT_BUREAU_PARTNER,
            }
            | messaging_env(self.messaging_url)
            | dict(extra_env or {}),
            templates=self.templates,
            topic_partitions=TEST_TOPIC_PARTITIONS,
        )

    @property
    def agency_url(self) -> str:
        return f"http://127.0.0.1:{self.ports[AGENCY]}"

    @property
    def credit_bureau_url(self) -> str:
        return f"http://127.0.0.1:{self.ports[CREDIT_BUREAU]}"

    @property
    def messaging_url(self) -> str:
        """The sandbox push, SMS and letter providers (one process)."""
        return f"http://127.0.0.1:{self.ports[MESSAGING]}"

    @property
    def maildir(self) -> Path:
        """Where the stack's SMTP sink keeps what the services mailed (a Maildir)."""
        return self.workdir / "mail"

    def mail_to(self, address: str) -> list[Delivered]:
        """The messages the services mailed to `address`, oldest first."""
        return delivered(self.maildir, address)

    def wait_for_mail(self, address: str, count: int, timeout: float = 15.0) -> list[Delivered]:
        """The messages to `address` once there are at least `count` (mail leaves after
        the answer that caused it)."""
        deadline = time.monotonic() + timeout
        while len(found := self.mail_to(address)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} messages in {timeout}s")
            time.sleep(0.05)
        return found

    def code_for(self, address: str, *, after: int = 0, timeout: float = 15.0) -> str:
        """The one-time code in the newest message to `address`, once more than `after`
        messages have reached it (mail leaves after the answer: this waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.mail_to(address)) > after and (code := last_code(self.maildir, address)):
                return code
            time.sleep(0.05)
        raise AssertionError(f"no code reached the SMTP sink within {timeout}s")

    def service_env(self, name: str, **overrides: str) -> dict[str, str]:
        return {**os.environ, **self.env[name], **overrides}

    def settings(self, name: str) -> ServiceSettings:
        return settings_from_env(service_definitions()[name].settings_class, self.env[name])

    @property
    def operator(self) -> httpx.Auth:
        """httpx auth for an operator's calls to internal routes: each request carries a
        fresh service token of the service it is sent to, on /internal paths only (as
        `expensura` run with that service's credentials would), so it passes routes that
        admit the service itself."""
        return self.as_service(None)

    def as_service(self, caller: str | None) -> httpx.Auth:
        """httpx auth for calls to internal routes as service `caller` (None: as the
        service each request is sent to), a fresh token per request, /internal paths only."""
        listeners = [*self.ports.items(), *self.internal_ports.items()]
        by_port = {port: name for name, port in listeners if name in self.env}
        return _OperatorAuth(
            lambda port: self.service_headers(by_port[port], caller=caller or by_port[port])
        )

    def service_headers(self, audience: str, *, caller: str) -> dict[str, str]:
        """An Authorization header for a call from service `caller` to `audience`'s
        internal routes, signed with the caller's provisioned key."""
        env = self.env[caller]
        identity = ServiceIdentity.from_config(
            caller, env["EXPENSURA_SERVICE_KEY"], json.loads(env["EXPENSURA_SERVICE_PUBLIC_KEYS"])
        )
        return identity.headers_for(audience)

    def database_url(self, name: str, *, admin: bool = False) -> str:
        """The service's database as its app role, or as the server's admin (superuser)."""
        if not admin:
            return self.env[name]["EXPENSURA_DATABASE_URL"]
        from expensura_events.db import with_database

        return with_database(self.admin_url, self.namespace + service(name).database)

    def start(self, name: str, *, wait: bool = True, **env: str) -> ServiceProcess:
        """Start service `name` as `expensura serve` runs it: both listeners, one process."""
        if name == "identity" and AGENCY not in self.processes:
            self.start_agency()
        if name == "loans" and CREDIT_BUREAU not in self.processes:
            self.start_credit_bureau()
        if name == "incident" and MESSAGING not in self.processes:
            self.start_messaging()
        sink = self.processes.get(SMTP_SINK)
        if sink is None or sink.proc.poll() is not None:
            self.start_smtp_sink()
        internal_port = self.internal_ports[name]
        argv = [sys.executable, "-m", "expensura_ops.cli", "serve", name, "--host", "127.0.0.1"]
        argv += ["--port", str(self.ports[name]), "--internal-port", str(internal_port)]
        argv += ["--no-access-log"]
        return self._spawn(name, argv, wait=wait, internal_port=internal_port, **env)

    def start_agency(self) -> ServiceProcess:
        """The sandbox verification agency identity talks to (as `make run` starts it)."""
        argv = [sys.executable, "-m", "uvicorn", AGENCY_APP, "--host", "127.0.0.1"]
        argv += ["--port", str(self.ports[AGENCY]), "--no-access-log"]
        return self._spawn(AGENCY, argv, wait=True, ready_path="/sandbox/state")

    def start_credit_bureau(self) -> ServiceProcess:
        """The sandbox credit bureau loans pulls reports from (as `make run` starts it)."""
        argv = [sys.executable, "-m", "uvicorn", CREDIT_BUREAU_APP, "--host", "127.0.0.1"]
        argv += ["--port", str(self.ports[CREDIT_BUREAU]), "--no-access-log"]
        return self._spawn(CREDIT_BUREAU, argv, wait=True, ready_path="/sandbox/state")

    def start_messaging(self) -> ServiceProcess:
        """The sandbox push, SMS and letter providers incident's notices use (as `make run`
        starts them); what they delivered: `GET {messaging_url}/sandbox/deliveries`."""
        argv = [sys.executable, "-m", "uvicorn", MESSAGING_APP, "--host", "127.0.0.1"]
        argv += ["--port", str(self.ports[MESSAGING]), "--no-access-log"]
        return self._spawn(MESSAGING, argv, wait=True, ready_path="/sandbox/state")

    def start_smtp_sink(self) -> ServiceProcess:
        """The SMTP sink the services mail to (as `make run` starts it); see `maildir`."""
        argv = [sys.executable, "-m", SMTP_SINK_MODULE, "--port", str(self.ports[SMTP_SINK])]
        argv += ["--maildir", str(self.maildir)]
        sp = self._spawn(SMTP_SINK, argv, wait=False)
        self.wait_listening(sp)
        return sp

    @staticmethod
    def wait_listening(sp: ServiceProcess, timeout: float = 30.0) -> None:
        """Until the process accepts TCP connections on its port (a non-HTTP server)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sp.proc.poll() is not None:
                raise RuntimeError(f"{sp.name} exited ({sp.proc.returncode}):\n{sp.log()}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", sp.port)) == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{sp.name} not listening after {timeout}s:\n{sp.log()}")

    def _spawn(
        self,
        name: str,
        argv: list[str],
        *,
        wait: bool,
        ready_path: str = "/readyz",
        internal_port: int | None = None,
        **env: str,
    ) -> ServiceProcess:
        port = self.ports[name]
        log_path = self.workdir / f"{name}-{port}-{len(self.processes)}.log"
        self.workdir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            argv,
            env=self.service_env(name, **env) if name in self.env else {**os.environ, **env},
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        sp = ServiceProcess(name, port, proc, log_path, internal_port)
        self.processes[name] = sp
        if wait:
            self.wait_ready(sp, path=ready_path)
        return sp

    def start_all(self, **env: str) -> dict[str, ServiceProcess]:
        started = {s.name.value: self.start(s.name.value, wait=False, **env) for s in SERVICES}
        for sp in started.values():
            self.wait_ready(sp)
        return started

    @staticmethod
    def wait_ready(sp: ServiceProcess, timeout: float = 60.0, path: str = "/readyz") -> None:
        """Until every listener of the process answers `path` with 200."""
        deadline = time.monotonic() + timeout
        waiting = list(sp.urls)
        while time.monotonic() < deadline:
            if sp.proc.poll() is not None:
                raise RuntimeError(f"{sp.name} exited ({sp.proc.returncode}):\n{sp.log()}")
            try:
                if httpx.get(f"{waiting[0]}{path}", timeout=2).status_code == 200:
                    waiting.pop(0)
                    if not waiting:
                        return
                    continue
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{sp.name} not ready after {timeout}s:\n{sp.log()}")

    def cli(
        self, *args: str, service_name: str = "identity", check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the `expensura` command line against this stack, as an operator would."""
        exe = Path(sys.executable).with_name("expensura")
        return subprocess.run(
            [str(exe), *args],
            env=self.service_env(service_name),
            capture_output=True,
            text=True,
            check=check,
            timeout=300,
        )

    def stop_all(self) -> None:
        for sp in self.processes.values():
            sp.stop()

    async def drop(self) -> None:
        """Drop this stack's databases."""
        engine = create_async_engine(async_url(self.admin_url), isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                for db in [
                    *(self.namespace + s.database for s in SERVICES),
                    self.namespace + KEYSTORE_DATABASE,
                ]:
                    await conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        finally:
            await engine.dispose()


Message = tuple[bytes | None, bytes, dict[str, bytes]]


async def topic_messages(
    bootstrap: str, topic: str, *, settle: float = 1.0, timeout: float = 10.0
) -> list[Message]:
    """Every message now in `topic` (key, value, headers), read from the beginning."""
    return (await topics_messages(bootstrap, [topic], settle=settle, timeout=timeout))[topic]


async def topics_messages(
    bootstrap: str,
    topics: list[str],
    *,
    settle: float = 1.0,
    timeout: float = 10.0,
    strict: bool = False,
) -> dict[str, list[Message]]:
    """Every message now in each of `topics`, read from the beginning by one consumer
    assigned to all their partitions at once: the read ends when nothing has arrived for
    `settle` seconds, once for all topics (one per topic would cost a second each).
    `strict`: raise TimeoutError if messages were still arriving at the timeout."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        out: dict[str, list[Message]] = {topic: [] for topic in topics}
        deadline = time.monotonic() + timeout
        missing = [t for t in topics if consumer.partitions_for_topic(t) is None]
        while missing and time.monotonic() < deadline:
            await consumer.topics()  # refresh metadata
            missing = [t for t in topics if consumer.partitions_for_topic(t) is None]
            if missing:
                await asyncio.sleep(0.1)
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not tps:
            return out
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle and time.monotonic() < deadline + settle:
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for r in records:
                    out[tp.topic].append((r.key, r.value or b"", dict(r.headers or ())))
                quiet_since = time.monotonic()
        if strict and time.monotonic() - quiet_since < settle:
            raise TimeoutError(f"messages were still arriving after {timeout} s")
        return out
    finally:
        await consumer.stop()
