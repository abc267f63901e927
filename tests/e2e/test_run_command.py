"""The README's run command, as a user runs it: no URLs given, so it brings up its own
PostgreSQL and broker, provisions, starts the five services, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from expensura_events.topology import SERVICES
from expensura_ops.devstack import broker, paths, postgres


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _offset() -> int:
    for _ in range(50):
        offset = random.randrange(2000, 20000, 10)
        ports = [s.port + offset for s in SERVICES]
        ports += [postgres.DEFAULT_PORT + offset, broker.DEFAULT_PORT + offset]
        if all(p < 65536 and _free(p) for p in ports):
            return offset
    raise RuntimeError("no free port range")


def _wait(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def test_run_starts_embedded_postgres_broker_and_five_services_then_stops_on_ctrl_c() -> None:
    # under the project's var/: the embedded server's OS user must be able to traverse it
    home = paths.var_dir() / "tmp" / f"run-{uuid.uuid4().hex[:8]}"
    home.mkdir(parents=True)
    offset = _offset()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS") and not k.startswith("EXPENSURA_")
    }
    env |= {"EXPENSURA_HOME": str(home), "EXPENSURA_PORT_OFFSET": str(offset)}
    exe = str(Path(sys.executable).with_name("expensura"))
    proc = subprocess.Popen(
        [exe, "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        for spec in SERVICES:
            _wait(f"http://127.0.0.1:{spec.port + offset}/readyz")
        identity = f"http://127.0.0.1:{SERVICES[0].port + offset}"
        consent = f"http://127.0.0.1:{SERVICES[1].port + offset}"
        resp = httpx.post(
            f"{identity}/v1/accounts",
            json={"email": "first-user@example.com", "password": "correct horse battery staple"},
        )
        assert resp.status_code == 201
        _wait(f"{consent}/internal/known-subjects/{resp.json()['account_id']}", timeout=30)

        verify = subprocess.run(
            [exe, "log", "verify"], env=env, capture_output=True, text=True, timeout=60
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert verify.stdout.count("intact") == 5
        assert (home / "var" / "postgres" / "PG_VERSION").exists()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    text = out.decode(errors="replace")
    assert proc.returncode == 130, text
    assert "PostgreSQL" in text and "http://127.0.0.1:" in text  # where everything is
    assert _free(postgres.DEFAULT_PORT + offset)  # the embedded server was stopped
    assert all(_free(s.port + offset) for s in SERVICES)
    shutil.rmtree(home, ignore_errors=True)
