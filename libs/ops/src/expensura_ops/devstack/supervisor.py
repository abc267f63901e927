"""`expensura run`: PostgreSQL, the broker and the five services on this machine, under honcho.

Order matters: PostgreSQL and the broker must answer before provisioning (databases, roles,
migrations, topics), and provisioning yields each service's environment. honcho's Manager
starts all its processes at once, so `_StagedManager` starts the broker first, provisions once
it answers, and only then adds the services. Ctrl-C or SIGTERM stops the processes through
honcho; the embedded PostgreSQL (not a honcho process, it outlives runs) is stopped last.

Under `make run`, a SIGINT sent to make alone (as a supervisor or an IDE sends it) never
reaches us: make passes only SIGTERM on to its recipe, and otherwise waits for the recipe to
end. `_follow_make` notices make giving up and stops the stack as if we had the SIGINT.
"""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import os
import queue
import shlex
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from honcho.manager import SIGNALS, Manager
from honcho.printer import Printer
from rich.console import Console
from rich.table import Table

from expensura_events.topology import SERVICES, ServiceSpec
from expensura_ops.devstack import broker, paths, postgres

DATABASE_URL_ENV = "DATABASE_URL"
KAFKA_ENV = "KAFKA_BOOTSTRAP_SERVERS"
BROKER_PROCESS = "tansu"
HOST = "127.0.0.1"
_READY_TIMEOUT = 60.0

ServiceEnvironments = dict[str, dict[str, str]]
Provision = Callable[[str, str], ServiceEnvironments | Awaitable[ServiceEnvironments]]
"""`provision(admin_url, bootstrap_servers)` → environment variables per service name."""
ExtraProcesses = Mapping[str, tuple[list[str], dict[str, str]]]
"""Process name → (argv, environment added to os.environ); started with the services."""
Entry = tuple[str, str, str]
"""A row of the summary shown before the services: (what, where, notes)."""


class StackError(RuntimeError):
    """The local stack cannot start (a port in use, an unreachable server, ...)."""


def run_stack(
    provision: Provision,
    *,
    extra_processes: ExtraProcesses | None = None,
    entries: Sequence[Entry] = (),
    extra_ports: Mapping[str, int] | None = None,
    services: Sequence[ServiceSpec] = SERVICES,
    root: Path | None = None,
    postgres_port: int = postgres.DEFAULT_PORT,
    broker_port: int = broker.DEFAULT_PORT,
    python: str = sys.executable,
    output: TextIO | None = None,
) -> int:
    """Run the stack until Ctrl-C/SIGTERM or until a process exits; return the exit code.

    PostgreSQL: `$DATABASE_URL` (admin URL of a running server), else an embedded server in
    `<root>/var/postgres`. Broker: `$KAFKA_BOOTSTRAP_SERVERS`, else Tansu as a honcho process.
    `provision` may be a plain or an async function. Raises StackError before anything runs
    if a port is taken or a configured server does not answer. Call from the main thread
    (signal handlers). `entries` head the summary (the gateway: where clients come in);
    `extra_ports` (name → port) must be free too, as the services' are.
    """
    root = root or paths.project_root()
    var = paths.var_dir(root)
    var.mkdir(parents=True, exist_ok=True)
    out = output or sys.stdout
    extra = dict(extra_processes or {})
    _check_ports_free({spec.name.value: spec.port for spec in services})
    _check_ports_free({f"{spec.name.value} internal": spec.internal_port for spec in services})
    _check_ports_free(extra_ports or {})

    embedded: postgres.EmbeddedPostgres | None = None
    stop_postgres = False
    saved_handlers = {signum: signal.getsignal(signum) for signum in SIGNALS}
    done = threading.Event()
    _follow_make(done)
    try:
        with _signals_interrupt():  # until honcho takes over: Ctrl-C/SIGTERM unwind cleanly
            if url := os.environ.get(DATABASE_URL_ENV):
                admin_url = postgres.normalise_database_url(url)
                if not postgres.postgres_available_at(admin_url):
                    shown = postgres.display_url(admin_url)
                    raise StackError(f"{DATABASE_URL_ENV}: no PostgreSQL accepts {shown}")
            else:
                embedded = postgres.EmbeddedPostgres(paths.postgres_data_dir(root), postgres_port)
                stop_postgres = not embedded.is_running()  # never stop another run's server
                admin_url = embedded.start()

            if servers := os.environ.get(KAFKA_ENV):
                bootstrap, broker_command = servers, None
                if not broker.broker_answers(bootstrap):
                    raise StackError(f"{KAFKA_ENV}: no Kafka broker answers at {bootstrap}")
            else:
                _check_ports_free({BROKER_PROCESS: broker_port})
                bootstrap = f"{broker.HOST}:{broker_port}"
                broker_command = broker.command_line(broker_port)

        _print_summary(
            Console(file=out),
            services=services,
            admin_url=admin_url,
            embedded=embedded,
            bootstrap=bootstrap,
            broker_embedded=broker_command is not None,
            var=var,
            extra=extra,
            entries=entries,
        )

        def prepare() -> dict[str, tuple[str, dict[str, str]]]:
            environments = _call_provision(provision, admin_url, bootstrap)
            base = {k: v for k, v in os.environ.items() if k != DATABASE_URL_ENV}  # admin creds
            processes: dict[str, tuple[str, dict[str, str]]] = {}
            for spec in services:
                # Both listeners of the service in one process (expensura_ops.serve).
                argv = [python, "-m", "expensura_ops.cli", "serve", spec.name.value]
                argv += ["--host", HOST, "--port", str(spec.port)]
                argv += ["--internal-port", str(spec.internal_port)]
                env = {**base, **environments.get(spec.name.value, {})}
                processes[spec.name.value] = (shlex.join(argv), env)
            for name, (argv, env) in extra.items():
                processes[name] = (shlex.join(argv), {**base, **env})
            return processes

        printer = Printer(out)
        manager = _StagedManager(
            printer,
            ready=lambda: broker.broker_answers(bootstrap, 1.0),
            prepare=prepare,
            cwd=root,
        )
        # Align the output of processes started later with that of the first ones.
        names = [BROKER_PROCESS, *(spec.name.value for spec in services), *extra]
        printer.width = max(len(name) for name in names)
        if broker_command is not None:
            manager.add_process(BROKER_PROCESS, shlex.join(broker_command), cwd=str(root))
        manager.loop()
        if manager.failure is not None:
            raise manager.failure
        return int(manager.returncode or 0)
    except _Interrupted as interrupt:  # before honcho ran: nothing of its to stop
        return int(SIGNALS[interrupt.signum]["rc"])
    finally:
        done.set()
        for signum, handler in saved_handlers.items():  # honcho's stay installed otherwise
            signal.signal(signum, handler)
        if embedded is not None and stop_postgres:
            embedded.stop()


class _StagedManager(Manager):  # type: ignore[misc]  # honcho has no type hints
    """honcho's Manager, starting in two stages.

    First the processes added before `loop()` (the broker); once `ready()` is true, `prepare()`
    (provisioning) returns the remaining processes (name → shell command, env), started then.
    Relies on Manager internals of honcho 2.0 (`_processes`, `_start`, `events`).
    """

    def __init__(
        self,
        printer: Printer,
        *,
        ready: Callable[[], bool],
        prepare: Callable[[], Mapping[str, tuple[str, dict[str, str]]]],
        cwd: Path,
    ) -> None:
        super().__init__(printer)
        self._ready = ready
        self._prepare = prepare
        self._cwd = str(cwd)
        self.failure: BaseException | None = None

    def _start(self) -> None:
        super()._start()
        try:
            with _signals_interrupt():
                later = self._run_stage()
        except _Interrupted as interrupt:
            self._system_print(f"{SIGNALS[interrupt.signum]['name']} received\n")
            self.returncode = SIGNALS[interrupt.signum]["rc"]
            self._terminate_started()
            return
        except Exception as error:  # re-raised by run_stack once the broker has stopped
            self.failure = error
            self.returncode = 1
            self._system_print(f"startup failed: {error}\n")
            self._terminate_started()
            return
        if later is None:
            return  # a process stopped during the stage; loop() now stops the rest
        for name, (command, env) in later.items():
            self.add_process(name, command, env=env, cwd=self._cwd)
            entry = self._processes[name]
            entry["process"] = multiprocessing.Process(
                name=name, target=entry["obj"].run, args=(self.events, True)
            )
            entry["process"].start()

    def _run_stage(self) -> Mapping[str, tuple[str, dict[str, str]]] | None:
        deadline = time.monotonic() + _READY_TIMEOUT
        # Wait for the started processes' pids first: terminate() needs them.
        while not self._all_started() or not self._ready():
            self._pump()
            if self._any_stopped():
                return None
            if time.monotonic() > deadline:
                raise StackError(f"infrastructure not ready after {_READY_TIMEOUT:.0f}s")
        self._system_print("infrastructure ready; provisioning\n")
        return self._prepare()

    def _terminate_started(self) -> None:
        deadline = time.monotonic() + 5.0
        while not self._all_started() and time.monotonic() < deadline:
            self._pump()  # terminate() signals by pid, which arrives as an event
        self.terminate()

    def _pump(self, timeout: float = 0.05) -> None:
        """Handle queued process events as `loop()` would, while loop() waits for `_start`."""
        try:
            while True:
                message = self.events.get(timeout=timeout)
                timeout = 0.0
                if message.type == "line":
                    self._printer.write(message)
                elif message.type == "start":
                    self._processes[message.name]["pid"] = message.data["pid"]
                    self._system_print(f"{message.name} started (pid={message.data['pid']})\n")
                elif message.type == "stop":
                    returncode = message.data["returncode"]
                    self._processes[message.name]["returncode"] = returncode
                    self._system_print(f"{message.name} stopped (rc={returncode})\n")
                    if self.returncode is None:
                        self.returncode = returncode
        except queue.Empty:
            return


# Signals on which GNU make stops without passing them on (SIGTERM it passes on itself).
_MAKE_KEEPS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT)
_SHELLS = frozenset({"sh", "bash", "dash", "zsh"})


def _proc_status(pid: int) -> dict[str, str] | None:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:  # gone, or no /proc (not Linux): nothing to follow
        return None
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _make_running_us() -> int | None:
    """The `make` whose recipe we are (directly, or through the recipe's shell), if any."""
    pid = os.getppid()
    for _ in range(3):
        status = _proc_status(pid)
        if status is None:
            return None
        if status.get("Name") in ("make", "gmake"):
            return pid
        if status.get("Name") not in _SHELLS:
            return None
        pid = int(status["PPid"])
    return None


def _caught(status: dict[str, str]) -> set[int]:
    mask = int(status.get("SigCgt", "0"), 16)
    return {int(s) for s in _MAKE_KEEPS if mask & (1 << (int(s) - 1))}


def _follow_make(done: threading.Event, interval: float = 0.2) -> None:
    """When the `make` running us is told to stop, stop too (a SIGINT to ourselves).

    GNU make handles SIGINT (and SIGHUP, SIGQUIT) by resetting it to the default and
    waiting for its recipes before dying: that reset shows in /proc as the signal no longer
    being caught. A make that is gone altogether (SIGKILL) ends the stack as well.
    """
    make = _make_running_us()
    status = _proc_status(make) if make is not None else None
    if make is None or status is None:
        return
    watched = _caught(status)

    def follow() -> None:
        while not done.wait(interval):
            now = _proc_status(make)
            gone = now is None or now.get("Name") != status.get("Name")  # or its pid reused
            if (gone or watched - _caught(now or {})) and not done.is_set():
                os.kill(os.getpid(), signal.SIGINT)  # the clean path Ctrl-C takes
                return

    threading.Thread(target=follow, name="follow-make", daemon=True).start()


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGINT/SIGTERM raise _Interrupted (SIGTERM would otherwise kill us without cleanup)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise _Interrupted(signum)

    previous = {signum: signal.signal(signum, interrupt) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _call_provision(provision: Provision, admin_url: str, bootstrap: str) -> ServiceEnvironments:
    result = provision(admin_url, bootstrap)
    if inspect.isawaitable(result):

        async def wait() -> ServiceEnvironments:
            return await result

        return asyncio.run(wait())
    return result


def _check_ports_free(ports: Mapping[str, int]) -> None:
    for name, port in ports.items():
        with socket.socket() as probe:
            if probe.connect_ex((HOST, port)) == 0:
                raise StackError(
                    f"port {port} ({name}) on {HOST} is in use: is the stack already running?"
                )


def _print_summary(
    console: Console,
    *,
    services: Sequence[ServiceSpec],
    admin_url: str,
    embedded: postgres.EmbeddedPostgres | None,
    bootstrap: str,
    broker_embedded: bool,
    var: Path,
    extra: Mapping[str, Any],
    entries: Sequence[Entry] = (),
) -> None:
    table = Table(title="Expensura local stack", title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("where", overflow="fold")  # fold, not "…": URLs and paths must stay whole
    table.add_column("notes", overflow="fold")
    for what, where, notes in entries:
        table.add_row(what, where, notes)
    shown = {what for what, _, _ in entries}
    for spec in services:
        inside = f"http://{HOST}:{spec.internal_port}"
        table.add_row(spec.name.value, f"http://{HOST}:{spec.port}", "public API")
        table.add_row("", inside, f"internal: /internal/*, API docs at {inside}/docs")
    table.add_row(
        "PostgreSQL",
        postgres.display_url(admin_url),
        f"embedded, data in {embedded.data_dir}" if embedded else f"from ${DATABASE_URL_ENV}",
    )
    table.add_row(
        "Kafka broker",
        bootstrap,
        "Tansu, in memory: a restart loses topics" if broker_embedded else f"from ${KAFKA_ENV}",
    )
    for name in extra:
        if name not in shown:
            table.add_row(name, "", "extra process")
    table.add_row("state", str(var), "")
    if embedded is not None:
        table.add_row("PostgreSQL log", str(embedded.log_file), "")
    table.add_row("process logs", "this terminal", "prefixed by process name (honcho)")
    console.print(table)
