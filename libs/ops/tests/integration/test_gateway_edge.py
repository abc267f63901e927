"""The gateway's own rules, run by the real Caddy with the deployment's Caddyfile as `make
run` starts it, in front of a recording upstream (what reaches a service, byte for byte):
the body limit, the client address it forwards and whence it dials, the request id that is
the trace it starts. (The run-command e2e test goes through it to the real services.)"""

from __future__ import annotations

import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from expensura_ops import gateway
from expensura_ops.testing.stack import free_port

SERVICES = ("identity", "consent", "loans", "sharing-gateway", "incident")


class Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.seen.append(
                    {"peer": self.client_address[0], "headers": dict(self.headers), "n": len(body)}
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext, Recorder]]:
    upstream = Recorder()
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    argv, env = gateway.process(
        tmp_path,
        port,
        dict.fromkeys(SERVICES, upstream.server_address[1]),
        dialing_from=gateway.dial_from(),
    )
    caddy = argv[argv.index("--") + 1 :]  # Caddy itself, without the document's merge
    log = tmp_path / "caddy.log"
    proc = subprocess.Popen(caddy, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                trusted = ssl.create_default_context(cafile=str(gateway.root_certificate(tmp_path)))
                httpx.get(gateway.url(port), verify=trusted, timeout=2)
                break
            except (OSError, ssl.SSLError, httpx.HTTPError):
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the gateway did not start"
                time.sleep(0.1)
        yield gateway.url(port), trusted, upstream
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        upstream.shutdown()
        upstream.server_close()


def test_a_body_over_1_mb_never_reaches_the_service_whole(
    edge: tuple[str, ssl.SSLContext, Recorder],
) -> None:
    base, trusted, upstream = edge
    with httpx.Client(base_url=base, verify=trusted, timeout=30) as app:
        fits = app.post("/v1/accounts", content=b"x" * 900_000)
        assert fits.status_code == 200 and upstream.seen[-1]["n"] == 900_000
        refused = app.post("/v1/accounts", content=b"x" * 1_100_000)
        assert refused.status_code == 413
        assert all(seen["n"] <= 1_000_000 for seen in upstream.seen)
        # and the service is not marked down for everyone by one client's over-size body
        assert app.post("/v1/accounts", content=b"{}").status_code == 200


def test_the_service_gets_the_client_address_from_the_gateway_alone_and_the_trace(
    edge: tuple[str, ssl.SSLContext, Recorder],
) -> None:
    base, trusted, upstream = edge
    with httpx.Client(base_url=base, verify=trusted, timeout=30) as app:
        answer = app.post("/v1/sessions", content=b"{}", headers={"X-Forwarded-For": "203.0.113.9"})
    seen = upstream.seen[-1]
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert seen["peer"] == gateway.dial_from()  # the one address the services believe
    assert headers["x-forwarded-for"] == "127.0.0.1"  # the client's, not what it claimed
    request_id = answer.headers["x-request-id"]
    assert headers["x-request-id"] == request_id
    assert headers["traceparent"].split("-")[1] == request_id  # the trace continues inside
