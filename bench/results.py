"""What one run measured: every figure the terminal tables and docs/performance.md show."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.decisions import DecisionResult
from bench.diagnostics import Diagnostics
from bench.infra import Machine
from bench.latency import LatencyRun
from bench.profile import Profile
from bench.replay import ReplayResult
from bench.signins import SignInResult
from bench.throughput import ThroughputResult


@dataclass(frozen=True)
class Results:
    profile: Profile
    machine: Machine
    postgres: str  # where the server came from, and how
    broker: str
    provision_s: float
    latency: LatencyRun
    replay: ReplayResult
    throughput: ThroughputResult
    diagnostics: Diagnostics
    decisions: DecisionResult
    sign_ins: SignInResult
    total_s: float
    load_after: tuple[float, float, float]
    # The headline figures of issue 15, as fields (`dataclasses.fields`/`asdict` list them).
    rebuild_events_per_s: float = field(init=False)
    verify_events_per_s: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rebuild_events_per_s", self.replay.rebuild.events_per_s)
        object.__setattr__(self, "verify_events_per_s", self.replay.verify.events_per_s)
