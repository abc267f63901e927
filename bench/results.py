"""What one run measured: every figure the terminal tables and docs/performance.md show."""

from __future__ import annotations

from dataclasses import dataclass

from bench.decisions import DecisionResult
from bench.diagnostics import Diagnostics
from bench.idle import IdleResult
from bench.infra import Machine
from bench.latency import LatencyRun
from bench.peer import PeerResult
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
    peer: PeerResult | None = None  # None: eventsourcing not installed
    idle: IdleResult | None = None
