"""Small statistics helpers (no numpy: the figures are few)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float) -> float:
    return seconds * 1000.0


def _machine_jiffies() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, from /proc/stat (0, 0 elsewhere)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return 0.0, 0.0
    user, nice, system, idle, iowait, irq, softirq, steal = (float(v) for v in first[1:9])
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return total - idle - iowait, total


class CpuMeter:
    """CPU used between start and stop, in cores (1.0 = one core busy): this process's, and
    the whole machine's (this process, PostgreSQL, the broker and anything else running)."""

    def __init__(self) -> None:
        self._process = time.process_time()
        self._wall = time.perf_counter()
        self.wall_s = 0.0  # from start to stop, once stopped
        self._busy, self._total = _machine_jiffies()

    def stop(self) -> tuple[float, float]:
        self.wall_s = wall = time.perf_counter() - self._wall
        process = (time.process_time() - self._process) / wall if wall > 0 else math.nan
        busy, total = _machine_jiffies()
        cores = os.cpu_count() or 1
        machine = (
            (busy - self._busy) / (total - self._total) * cores if total > self._total else math.nan
        )
        return process, machine
