"""A sandbox server of an external party on its own, as a real process on a free port: for
tests of the sandbox itself and of a service's client for it (a whole stack starts its
sandboxes through `LocalStack`)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from expensura_ops.testing.stack import free_port


@contextlib.contextmanager
def sandbox_server(
    app: str, log: Path, env: Mapping[str, str], ready_path: str = "/sandbox/state"
) -> Iterator[str]:
    """Run the ASGI `app` (module:attribute) under uvicorn until the block ends; its URL.
    Its output goes to `log`, which a failure to start quotes."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    argv.append("--no-access-log")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url + ready_path, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_ready(proc: subprocess.Popen[bytes], probe: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the sandbox exited ({proc.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(probe, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"the sandbox did not answer in 30 s:\n{log.read_text()}")
