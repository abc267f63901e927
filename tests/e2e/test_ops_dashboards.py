"""The dashboards as ops open them: `expensura run` (its own stack, on its own ports) with
Prometheus scraping the services and the viewer serving deploy/dashboards/*.json; a scripted
workload (the incident drill, twice) through the services' public APIs; then each dashboard
opened in headless Chromium shows the workload's numbers. Screenshots are kept under
var/artefacts/dashboards/.

Two drills, so that two partners, each with its own disclosures, show side by side. Every
counter series here is born during the workload: the panels' "in range" queries count such a
series from zero (`increase` alone would miss what it counted before its first scrape).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from expensura_events.topology import SERVICES
from expensura_ops import dashboards, prometheus, stack
from expensura_ops.testing import chromium, local_run
from expensura_ops.testing.otlp import SandboxCollector

pytestmark = pytest.mark.skipif(
    prometheus.binary() is None or chromium.binary() is None,
    reason="prometheus and chromium: make run-tools",
)

ROOT = Path(__file__).parents[2]
ARTEFACTS = ROOT / "var" / "artefacts" / "dashboards"
FIRST, SECOND = 1, 5  # customers per drill
# In the second drill every second customer withdraws the consent before the leak: the
# partner's pulls of them are refused (customers 1 and 3 of 0…4).
WITHDRAW_EVERY = 2
WITHDRAWN = SECOND // WITHDRAW_EVERY


def _until(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def _value(prom: str, expr: str) -> float | None:
    body = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=5).json()
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _drill(
    env: dict[str, str], customers: int, report: Path, withdraw_every: int = 0
) -> dict[str, object]:
    exe = Path(sys.executable).with_name("expensura")
    run = subprocess.run(
        [str(exe), "incident", "drill", "--customers", str(customers), "--fail-every", "0",
         "--withdraw-every", str(withdraw_every), "--revocation-wait", "5",
         "--report", str(report)],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return dict(json.loads(report.read_text()))


@pytest.mark.timeout(1500)
def test_the_dashboards_show_the_workload_in_a_browser(tmp_path: Path) -> None:
    home = local_run.new_home("dash")
    offset = local_run.free_offset()
    env = local_run.user_environment(home, offset)
    # A collector of our own: `make run` then starts no trace viewer, which this test does
    # not look at (tests/e2e/test_run_command.py does).
    collector = SandboxCollector().start()
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.endpoint
    exe = str(Path(sys.executable).with_name("expensura"))
    # What the stack prints goes to a file: a pipe nobody reads until the end fills up
    # (64 KB) during the drills and stalls the whole stack behind its own log.
    log_path = home / "run.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [exe, "run"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    prom = prometheus.url(prometheus.PROMETHEUS_PORT + offset)
    viewer = f"http://127.0.0.1:{dashboards.DASHBOARDS_PORT + offset}"
    failure: BaseException | None = None
    try:
        for spec in SERVICES:
            url = f"http://127.0.0.1:{spec.port + offset}/readyz"
            _until(lambda u=url: httpx.get(u, timeout=2).status_code == 200, url)  # type: ignore[misc]
        _until(lambda: httpx.get(viewer, timeout=2).status_code == 200, "no viewer")
        # Prometheus scrapes every service's internal listener
        _until(
            lambda: _value(prom, 'count(up{job="expensura"} == 1)') == len(SERVICES),
            "Prometheus does not scrape the five services",
        )

        drill_env = {k: v for k, v in env.items() if k != "EXPENSURA_PORT_OFFSET"}
        first = _drill(drill_env, FIRST, tmp_path / "first.json")
        second = _drill(drill_env, SECOND, tmp_path / "second.json", WITHDRAW_EVERY)
        assert (second["consents_withdrawn"], second["pulls_refused"]) == (WITHDRAWN, WITHDRAWN)
        partner = str(second["partner_id"])
        _until(
            lambda: (
                _value(prom, "sum(expensura_consents_given_total)") == FIRST + SECOND
                and _value(prom, f'sum(expensura_disclosures_total{{partner="{partner}"}})')
                == SECOND - WITHDRAWN
                and _value(prom, "sum(expensura_disclosures_refused_total)") == WITHDRAWN
            ),
            "the second drill's counters are not scraped",
        )
        time.sleep(6)  # one more scrape: the latest sample is the final count

        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        doms: dict[str, dict[str, dict[str, float]]] = {}
        for uid in ("privacy-operations", "service-overview", "event-pipeline"):
            url = f"{viewer}/d/expensura-{uid}?range=15m"
            doms[uid] = chromium.panel_values(chromium.dump_dom(url))
            shot = chromium.screenshot(url, ARTEFACTS / f"{uid}.png")
            print(f"\ndashboard {uid}: {shot}")

        privacy = doms["privacy-operations"]
        # every consent the drills' customers gave, every disclosure per partner
        given = privacy["Consents given in range, by purpose"]
        assert given == {"credit-assessment": FIRST + SECOND}, given
        disclosed = privacy["Disclosures in range, by partner and purpose"]
        assert disclosed == {
            f"{first['partner_id']} credit-assessment": FIRST,
            f"{partner} credit-assessment": SECOND - WITHDRAWN,
        }, disclosed
        # who withdrew before the leak: counted, and the partner's pulls of them refused
        withdrawn = privacy["Consents withdrawn in range, by purpose"]
        assert withdrawn == {"credit-assessment": WITHDRAWN}, withdrawn
        refused = privacy["Refusals in range, by partner and reason"]
        assert refused == {f"{partner} consent": WITHDRAWN}, refused
        assert {f"disclosed to {first['partner_id']}", f"disclosed to {partner}"} <= set(
            privacy["Disclosures and refusals"]
        )
        # two incidents reported and graded, neither closed by the drill
        incidents = privacy["Incidents open, by severity"]  # every severity, 0 or not
        expected = {str(r["severity"]): 0.0 for r in (first, second)}
        for report in (first, second):
            expected[str(report["severity"])] += 1
        assert {k: v for k, v in incidents.items() if v} == expected, incidents
        assert {"low", "medium", "high"} <= set(incidents), incidents
        assert privacy["Erasures pending"] == {"pending": 0.0}

        overview = doms["service-overview"]
        by_route = overview["Requests in range by route"]
        # each pull answered once (the drill retries only overload answers)
        assert by_route.get("sharing-gateway POST /v1/disclosures", 0) >= FIRST + SECOND, by_route
        assert {"identity", "consent", "sharing-gateway", "incident"} <= set(
            overview["Request rate by service"]
        )
        pipeline = doms["event-pipeline"]
        assert pipeline["Events applied"], pipeline
        assert all(v == 0 for v in pipeline["Dead letters"].values()), pipeline["Dead letters"]

        os.killpg(proc.pid, signal.SIGINT)
        _until(
            lambda: all(local_run.is_free(p) for p in stack.ports(offset)),
            "ports busy after SIGINT",
            30,
        )
    except BaseException as exc:
        failure = exc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        collector.stop()
    text = log_path.read_text(errors="replace")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "run.log").write_text(text)
    if failure is not None:
        raise AssertionError(
            f"{failure!r}; expensura run printed ({ARTEFACTS / 'run.log'}):\n{text[-6000:]}"
        ) from failure
    # ops find the dashboards in the summary `expensura run` prints
    assert "dashboards" in text and f"127.0.0.1:{dashboards.DASHBOARDS_PORT + offset}" in text
    shutil.rmtree(home, ignore_errors=True)
