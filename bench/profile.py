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


DEFAULT = Profile(
    name="default",
    warmup_s=1.0,
    window_s=3.0,
    batch=100,
    writer_counts=(1, 16),
    rates=(50.0, 100.0, 200.0),
    latency_warmup_s=2.0,
    latency_s=10.0,
    corpus=200_000,
)

QUICK = Profile(
    name="quick",
    warmup_s=0.3,
    window_s=1.0,
    batch=100,
    writer_counts=(1, 16),
    rates=(50.0, 200.0),
    latency_warmup_s=1.0,
    latency_s=3.0,
    corpus=200_000,  # verify and rebuild rates mean little over less
)
