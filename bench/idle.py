"""An idle stack's CPU: the five services started as `make run` starts them (its Kafka group
timings too), on databases and topics of their own (a namespace provisioned for this
measure: the run's other parts leave logs that would otherwise be projected now), no
requests at all, metered for a window after they settle. An idle stack should sleep (≤ 0.05
cores in all): a poll loop that spins without work shows here. The broker and PostgreSQL
are reported apart (the broker's fetch handling may force consumers to poll it)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from expensura_events.settings import ServiceSettings
from expensura_ops.testing.stack import LocalStack

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used by the process and its waited-for children)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return int(fields[1]), (utime + stime + cutime + cstime) / _TICKS


def tree_cpu_seconds(roots: Iterable[int]) -> float:
    """CPU seconds of the processes under `roots`, the roots included (0 off Linux)."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
            parents[int(entry.name)], used[int(entry.name)] = found
    wanted = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in wanted and pid not in wanted:
                wanted.add(pid)
                grew = True
    return sum(used.get(pid, 0.0) for pid in wanted)


@dataclass(frozen=True)
class IdleResult:
    settle_s: float
    window_s: float
    services_cores: float  # the five service processes (each with its relay and consumers)
    per_service: dict[str, float]
    broker_cores: float | None  # None: a broker this run did not start
    postgres_cores: float | None

    @property
    def stack_cores(self) -> float:
        """What the stack burns with no requests: the services, the broker and PostgreSQL."""
        return self.services_cores + (self.broker_cores or 0.0) + (self.postgres_cores or 0.0)


async def measure_idle(
    admin_url: str,
    bootstrap_servers: str,
    workdir: Path,
    *,
    broker_pid: int | None,
    postgres_pid: int | None,
    settle_s: float,
    window_s: float,
    say: Callable[[str], None],
) -> IdleResult:
    stack = LocalStack(admin_url, bootstrap_servers, workdir, templates=None)
    # Kafka's group timings as `make run` has them (the defaults), not the tests' short ones
    # (a heartbeat every 0.5 s so that consumers join in about a second).
    defaults = ServiceSettings.model_fields
    await stack.provision(
        {
            "EXPENSURA_KAFKA_SESSION_TIMEOUT_MS": str(defaults["kafka_session_timeout_ms"].default),
            "EXPENSURA_KAFKA_HEARTBEAT_INTERVAL_MS": str(
                defaults["kafka_heartbeat_interval_ms"].default
            ),
        }
    )
    try:
        return await _metered(stack, broker_pid, postgres_pid, settle_s, window_s, say)
    finally:
        await stack.drop()


async def _metered(
    stack: LocalStack,
    broker_pid: int | None,
    postgres_pid: int | None,
    settle_s: float,
    window_s: float,
    say: Callable[[str], None],
) -> IdleResult:
    started = await asyncio.to_thread(stack.start_all)
    try:
        say(f"idle: five services up; {settle_s:.0f} s to settle, then {window_s:.0f} s metered")
        await asyncio.sleep(settle_s)
        groups: dict[str, list[int]] = {n: [p.proc.pid] for n, p in started.items()}
        if broker_pid is not None:
            groups["(broker)"] = [broker_pid]
        if postgres_pid is not None:
            groups["(postgres)"] = [postgres_pid]
        before = {name: tree_cpu_seconds(pids) for name, pids in groups.items()}
        await asyncio.sleep(window_s)
        cores = {
            name: (tree_cpu_seconds(pids) - before[name]) / window_s
            for name, pids in groups.items()
        }
    finally:
        await asyncio.to_thread(stack.stop_all)
    per_service = {n: c for n, c in cores.items() if not n.startswith("(")}
    return IdleResult(
        settle_s,
        window_s,
        sum(per_service.values()),
        per_service,
        cores.get("(broker)"),
        cores.get("(postgres)"),
    )
