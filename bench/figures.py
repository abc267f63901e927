"""The headline figures of a run, by the names issue 15 gives them, each beside its target:
what `python -m bench --json FILE` writes and docs/performance.md's summary table shows.

A figure this run could not measure (wrk or the peer library not installed, no step at the
rate) is None, never a number from another run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from bench.results import Results
from bench.throughput import ENCRYPTED

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Target:
    value: float
    better: Better
    floor: str  # what the figure is measured against in the same run

    def met(self, figure: float | None) -> bool | None:
        if figure is None or math.isnan(figure):
            return None
        return figure >= self.value if self.better == "higher" else figure <= self.value


TARGETS: Mapping[str, Target] = {
    "append_ratio_1x16": Target(0.7, "higher", "plain INSERT of the same bytes, 16 writers"),
    "append_ratio_100x16": Target(0.7, "higher", "plain INSERT of the same bytes, 16 writers"),
    "append_vs_eventsourcing_1x16": Target(1.0, "higher", "eventsourcing's PostgreSQL recorder"),
    "projection_p50_ms_at_500": Target(10.0, "lower", "commit returned to the writer"),
    "projection_p99_ms_at_500": Target(25.0, "lower", "commit returned to the writer"),
    "decision_p99_ms_at_1000": Target(5.0, "lower", "wrk, paced at 1,000/s"),
    "decision_vs_healthz_throughput": Target(0.5, "higher", "the same process's /healthz"),
    "rebuild_events_per_s": Target(50_000.0, "higher", "the log's size"),
    "verify_events_per_s": Target(300_000.0, "higher", "the log's size"),
    "idle_stack_cores": Target(0.05, "lower", "no requests"),
}

PROJECTION_RATE = 500.0


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else value


def figures(results: Results) -> dict[str, float | None]:
    """Every key of TARGETS, measured in `results` (None where this run could not)."""
    t = results.throughput
    batch = results.profile.batch
    encrypted_1x16 = t.cell(ENCRYPTED, 1, 16).events_per_s
    step = next((s for s in results.latency.steps if s.target_rate == PROJECTION_RATE), None)
    native = results.decisions.native
    peer = results.peer
    return {
        "append_ratio_1x16": t.ratio(ENCRYPTED, 1, 16),
        "append_ratio_100x16": t.ratio(ENCRYPTED, batch, 16),
        "append_vs_eventsourcing_1x16": (
            None if peer is None else encrypted_1x16 / peer.events_per_s
        ),
        "projection_p50_ms_at_500": None if step is None else _finite(step.visible_ms["p50"]),
        "projection_p99_ms_at_500": None if step is None else _finite(step.visible_ms["p99"]),
        "decision_p99_ms_at_1000": None if native is None else native.paced.p99_ms,
        "decision_vs_healthz_throughput": None if native is None else native.throughput_ratio,
        "rebuild_events_per_s": results.replay.rebuild.events_per_s,
        "verify_events_per_s": results.replay.verify.events_per_s,
        "idle_stack_cores": None if results.idle is None else results.idle.stack_cores,
    }


def details(results: Results) -> dict[str, object]:
    """What a reader needs beside the figures to judge them: the achieved rates, the floors."""
    native = results.decisions.native
    step = next((s for s in results.latency.steps if s.target_rate == PROJECTION_RATE), None)
    idle = results.idle
    return {
        "profile": results.profile.name,
        "machine_cores": results.machine.cores,
        "load_before": list(results.machine.load_before),
        "projection_rate_achieved_at_500": None if step is None else step.achieved_rate,
        "projection_rate_projected_at_500": None if step is None else step.projected_rate,
        "decision_rate_paced": None if native is None else native.paced.per_second,
        "decision_errors_paced": None if native is None else native.paced.errors,
        "decisions_per_s_unpaced": None if native is None else native.decisions.per_second,
        "healthz_per_s": None if native is None else native.healthz.per_second,
        "peer_library": None if results.peer is None else results.peer.library,
        "peer_events_per_s_1x16": None if results.peer is None else results.peer.events_per_s,
        "idle_services_cores": None if idle is None else idle.services_cores,
        "idle_broker_cores": None if idle is None else idle.broker_cores,
        "idle_postgres_cores": None if idle is None else idle.postgres_cores,
        "idle_per_service_cores": None if idle is None else idle.per_service,
        "rebuild_events": results.replay.rebuild.events,
        "verify_events": results.replay.verify.events,
    }


def document(results: Results) -> dict[str, object]:
    """The JSON `--json FILE` writes: the figures by name, their targets, and the details."""
    measured = figures(results)
    return {
        **measured,
        "targets": {
            name: {
                "target": target.value,
                "better": target.better,
                "floor": target.floor,
                "met": target.met(measured[name]),
            }
            for name, target in TARGETS.items()
        },
        "details": details(results),
    }
