"""How long and how hard a run measures."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    warmup_s: float  # per throughput cell, discarded
    window_s: float  # per throughput cell, measured
    batch: int  # events per transaction in the batched cells
    writer_counts: tuple[int, ...]
    rates: tuple[float, ...]  # events/s of the latency steps, in order
    latency_warmup_s: float
    latency_s: float
    corpus: int  # events in the log for rebuild and verify
    idle_settle_s: float  # after the stack starts, before its idle CPU is metered
    idle_s: float


DEFAULT = Profile(
    name="default",
    warmup_s=1.0,
    window_s=3.0,
    batch=100,
    writer_counts=(1, 16),
    rates=(50.0, 100.0, 200.0, 500.0),
    latency_warmup_s=2.0,
    latency_s=10.0,
    corpus=200_000,
    idle_settle_s=20.0,
    idle_s=20.0,
)

QUICK = Profile(
    name="quick",
    warmup_s=0.3,
    window_s=1.0,
    batch=100,
    writer_counts=(1, 16),
    rates=(100.0, 500.0),  # 500: the target's rate (bench/figures.py)
    latency_warmup_s=1.0,
    latency_s=4.0,
    corpus=100_000,  # verify and rebuild rates mean little over less (filled by COPY)
    idle_settle_s=15.0,  # start-up work (first checkpoints, catch-up) is not idling
    idle_s=10.0,
)
