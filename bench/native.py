"""A native HTTP load generator (wrk, Debian's package) for the figures where the load
generator must not be the bottleneck: a Python client tops out below what one uvicorn
process answers, so it would measure itself.

`wrk` runs in its own process with its own threads; a Lua script makes each request (the
decision's body rotates over the subjects) and prints the summary as one JSON line. A paced
run sets wrk's per-connection `delay()` so that `connections` connections together offer a
target rate (wrk has no open-loop mode; the pacing is calibrated once and the achieved rate
is reported beside the latency, never assumed).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = """
local method, path, body_format = %(method)s, %(path)s, %(body_format)s
local subjects = {%(subjects)s}
local headers = {%(headers)s}
local i = 0
request = function()
  i = i + 1
  local body = nil
  if body_format ~= "" then
    body = string.format(body_format, subjects[(i %% #subjects) + 1])
  end
  return wrk.format(method, path, headers, body)
end
%(delay)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK-JSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, '
    .. '"errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


@dataclass(frozen=True)
class WrkResult:
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx answers, connection errors and timeouts
    connections: int
    delay_ms: float  # per-connection pause between requests (0: as fast as answered)


def _lua(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Lua string literal for these values


def run_wrk(
    url: str,
    path: str,
    *,
    seconds: float,
    connections: int,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body_format: str = "",
    subjects: list[str] | None = None,
    delay_ms: float = 0.0,
    threads: int = 2,
) -> WrkResult:
    """One wrk run against `url` + `path`; `body_format` gets one subject per request (%s)."""
    script = _SCRIPT % {
        "method": _lua(method),
        "path": _lua(path),
        "body_format": _lua(body_format),
        "subjects": ", ".join(_lua(s) for s in (subjects or [""])),
        "headers": ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in (headers or {}).items()),
        "delay": f"delay = function() return {delay_ms:.3f} end" if delay_ms > 0 else "",
    }
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "load.lua"
        lua.write_text(script)
        done = subprocess.run(
            [
                "wrk",
                f"-t{min(threads, connections)}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(lua),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK-JSON "))
    data = json.loads(line.removeprefix("WRK-JSON "))
    elapsed = data["duration_us"] / 1e6
    return WrkResult(
        data["requests"],
        data["requests"] / elapsed if elapsed > 0 else 0.0,
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
        data["errors"],
        connections,
        delay_ms,
    )


def paced_delay_ms(target_rate: float, connections: int, probe: WrkResult) -> float:
    """The per-connection delay that makes `connections` connections offer `target_rate`,
    given a probe run at `probe.delay_ms`: each connection's cycle is its request's latency
    plus the delay, so the delay is the target cycle minus the latency the probe saw."""
    cycle_ms = connections * 1000.0 / target_rate
    latency_ms = connections * 1000.0 / max(probe.per_second, 1e-9) - probe.delay_ms
    return max(0.0, cycle_ms - max(0.0, latency_ms))
