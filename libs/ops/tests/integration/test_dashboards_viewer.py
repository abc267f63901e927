"""The dashboard viewer against a real Prometheus (Debian's binary, as `expensura run` starts
it) scraping a stand-in `/metrics` with the contract's names: each dashboard opened in
headless Chromium shows the numbers the stand-in counted; the trace form redirects only a
trace id, and only where a traces UI is configured."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import uvicorn

from expensura_ops import prometheus
from expensura_ops.dashboards import checkout_dashboards
from expensura_ops.dashboards.app import create_app
from expensura_ops.testing import chromium
from expensura_ops.testing.stack import free_port

pytestmark = pytest.mark.skipif(
    prometheus.binary() is None or chromium.binary() is None,
    reason="prometheus and chromium: make run-tools",
)


class FakeMetrics:
    """A service's /metrics in the text format: the privacy operations' series, with the
    counters at 0 until `count()` (so Prometheus sees them grow, as a running stack's do)."""

    def __init__(self) -> None:
        self.given = 0
        self.disclosed = 0
        self.refused = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]

    def count(self) -> None:
        self.given, self.disclosed, self.refused = 5, 4, 2

    def text(self) -> str:
        return (
            "# TYPE expensura_consents_given_total counter\n"
            f'expensura_consents_given_total{{purpose="credit-assessment"}} {self.given}\n'
            "# TYPE expensura_disclosures_total counter\n"
            'expensura_disclosures_total{partner="bureau-1",purpose="credit-assessment"} '
            f"{self.disclosed}\n"
            "# TYPE expensura_disclosures_refused_total counter\n"
            'expensura_disclosures_refused_total{partner="bureau-1",reason="credential_revoked"} '
            f"{self.refused}\n"
            "# TYPE expensura_incidents_open gauge\n"
            'expensura_incidents_open{severity="high"} 1\n'
            "# TYPE expensura_erasures_pending gauge\n"
            "expensura_erasures_pending 3\n"
            "# TYPE expensura_relay_lag_events gauge\n"
            'expensura_relay_lag_events{service="consent"} 7\n'
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = fake.text().encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("content-type", "text/plain; version=0.0.4")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> FakeMetrics:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _until(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def _scraped(prom: str, expr: str) -> bool:
    try:
        body = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=5).json()
    except httpx.HTTPError:
        return False
    return bool(body.get("data", {}).get("result"))


@pytest.fixture
def prometheus_scraping(tmp_path: Path) -> Iterator[tuple[str, FakeMetrics]]:
    with FakeMetrics() as fake:
        port = free_port()
        argv, _ = prometheus.process(tmp_path, port, {"consent": fake.port}, interval="1s")
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            yield prometheus.url(port), fake
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture
def viewer(prometheus_scraping: tuple[str, FakeMetrics]) -> Iterator[str]:
    prom, _ = prometheus_scraping
    port = free_port()
    app = create_app(prom, checkout_dashboards(), "http://127.0.0.1:8196")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _until(lambda: server.started, "the viewer does not start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_the_dashboards_in_chromium_show_what_prometheus_scraped(
    prometheus_scraping: tuple[str, FakeMetrics], viewer: str, tmp_path: Path
) -> None:
    prom, fake = prometheus_scraping
    # Prometheus sees the counters at 0 first, then counted: `increase` over the range
    _until(lambda: _scraped(prom, "expensura_consents_given_total"), "no first scrape")
    time.sleep(2)
    fake.count()
    _until(lambda: _scraped(prom, "expensura_consents_given_total > 0"), "no second scrape")
    time.sleep(2)

    index = chromium.dump_dom(viewer)
    for uid in ("service-overview", "event-pipeline", "privacy-operations"):
        assert f'href="/d/expensura-{uid}"' in index
    dom = chromium.dump_dom(f"{viewer}/d/expensura-privacy-operations?range=5m")
    shot = chromium.screenshot(
        f"{viewer}/d/expensura-privacy-operations?range=5m", tmp_path / "p.png"
    )
    print(f"\nscreenshot: {shot}")
    panels = chromium.panel_values(dom)
    # gauges: exactly their value
    assert panels["Incidents open, by severity"] == {"high": 1.0}
    assert panels["Erasures pending"] == {"pending": 3.0}
    # "in range" counts: the series were born inside the range, so exactly what was counted
    assert panels["Consents given in range, by purpose"] == {"credit-assessment": 5.0}
    assert panels["Disclosures in range, by partner and purpose"] == {
        "bureau-1 credit-assessment": 4.0
    }
    assert panels["Refusals in range, by partner and reason"] == {
        "bureau-1 credential_revoked": 2.0
    }
    # a timeseries: its series by legend, the latest rate above zero after the count
    assert set(panels["Disclosures and refusals"]) == {
        "disclosed to bureau-1",
        "refused to bureau-1",
    }
    assert panels["Consents withdrawn in range, by purpose"] == {}  # never exported: no data
    assert shot.stat().st_size > 10_000

    # $service → .* : the event pipeline's panels query across every service
    pipeline = chromium.panel_values(chromium.dump_dom(f"{viewer}/d/expensura-event-pipeline"))
    assert pipeline["Relay lag (committed, not yet published)"] == {"consent": 7.0}


def test_prometheus_accepts_the_configuration_expensura_run_writes(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")  # Debian's prometheus package ships it
    if promtool is None:
        pytest.skip("no promtool")
    argv, _ = prometheus.process(tmp_path, 18198, {"identity": 8201, "consent": 8202})
    config = tmp_path / "prometheus" / "prometheus.yml"
    assert f"--config.file={config}" in argv and "--web.listen-address=127.0.0.1:18198" in argv
    checked = subprocess.run([promtool, "check", "config", str(config)], capture_output=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert b"SUCCESS: 7 rules found" in checked.stdout  # deploy/prometheus/alerts.yml
    text = config.read_text()
    assert "127.0.0.1:8201" in text and "127.0.0.1:8202" in text and "scrape_interval: 5s" in text


def test_the_trace_form_redirects_a_trace_id_and_nothing_else(viewer: str) -> None:
    page = httpx.get(f"{viewer}/d/expensura-service-overview").text
    assert 'action="/trace"' in page
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    resp = httpx.get(f"{viewer}/trace", params={"id": trace_id.upper()})
    assert resp.status_code == 303
    assert resp.headers["location"] == f"http://127.0.0.1:8196/redirects/traces/{trace_id}"
    # the attack: the form as an open redirect, or a path out of /redirects/traces
    for bad in ("https://evil.example/", "../../projects", f"{trace_id}/../x", "", "a" * 33):
        resp = httpx.get(f"{viewer}/trace", params={"id": bad})
        assert resp.status_code == 400 and "location" not in resp.headers, bad
    assert httpx.get(f"{viewer}/d/no-such-board").status_code == 404
    assert httpx.get(f"{viewer}/d/expensura-service-overview?range=1y").status_code == 400


async def test_without_a_traces_ui_there_is_no_trace_form() -> None:
    app = create_app("http://127.0.0.1:9", checkout_dashboards(), None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://viewer") as c:
        index = (await c.get("/")).text
        status = (await c.get("/trace", params={"id": "0" * 32})).status_code
    assert "/trace" not in index and status == 404
