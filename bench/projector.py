"""The latency bench's projection runner, in a process of its own (`python -m bench.projector`).

In production the consuming service is another process than the writer and its relay; in
one process, the writer's appends and the relay took most of the one core the runner had
to share (py-spy), so the runner's batches waited for the event loop, not the database.
The parent passes the consumer service's environment (`LocalStack.env`), closes the
child's stdin to stop it, and reads one JSON line of the runner's counts from its stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from bench.workloads import fast_settings, kafka_settings
from expensura_consent.subjects.projection import KnownSubjects
from expensura_events.projections import ProjectionRunner
from expensura_events.runtime import ServiceRuntime
from expensura_ops.services import service_definitions
from expensura_ops.testing.stack import settings_from_env

SERVICE = "consent"
GROUP = "consent.known-subjects"
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class RunnerCounts:
    applied: int
    errors: int


def cpu_seconds(pid: int) -> float:
    """CPU seconds a process has used so far (0 off Linux or once it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _definition() -> Any:
    """Consent's definition alone: `service_definitions` imports every service's app, which
    took seconds of the runner's start on a busy machine."""
    for ep in entry_points(group="expensura.services", name=SERVICE):
        return ep.load()
    return service_definitions()[SERVICE]


async def _run() -> RunnerCounts:
    definition = _definition()
    consent = ServiceRuntime(
        definition, fast_settings(settings_from_env(definition.settings_class, os.environ))
    )
    try:
        runner = ProjectionRunner(
            consent.engine, consent.mapper, KnownSubjects(), kafka_settings(consent), GROUP
        )
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        # stdin closed (the parent is done, or gone): stop
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        stop.set()
        await asyncio.wait_for(task, 15)
        return RunnerCounts(runner.stats.applied, runner.stats.errors)
    finally:
        await consent.close()


def main() -> int:
    from bench.cli import _quiet_logs

    _quiet_logs()
    counts = asyncio.run(_run())
    print(json.dumps({"applied": counts.applied, "errors": counts.errors}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
