"""Every running service process serves `/metrics` on its internal listener, and only there,
with exactly the metrics contract's names and labels (the dashboards' and alert rules'), its
own name as `service`, and the gauges read at the scrape (relay lag, dead letters, its
projections' lag): what Prometheus scrapes in the cluster."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from expensura_events.metrics import CONTRACT, series_names
from expensura_events.topology import SERVICES
from expensura_ops.testing.stack import LocalStack


async def test_every_service_exports_the_contract_on_its_internal_listener_only(
    stack: LocalStack,
) -> None:
    allowed = series_names()
    async with httpx.AsyncClient() as client:
        for name in (s.name.value for s in SERVICES):
            sp = stack.processes[name]
            hidden = await client.get(f"{sp.url}/metrics")
            assert hidden.status_code == 404, name
            assert hidden.headers["content-type"] == "application/problem+json"
            answer = await client.get(f"{sp.internal_url}/metrics")
            assert answer.status_code == 200, name
            assert answer.headers["content-type"].startswith("text/plain; version=0.0.4"), name
            families = list(text_string_to_metric_families(answer.text))
            declared = {
                f.name + {"counter": "_total", "histogram": "_bucket"}.get(f.type, "")
                for f in families
            }
            assert declared == set(CONTRACT), name  # every name, none other
            exported = [s for f in families for s in f.samples]
            for s in exported:
                assert s.name in allowed and set(s.labels) == allowed[s.name], (name, s)
                assert s.labels.get("service", name) == name, (name, s)
            names = {s.name for s in exported}
            # read at the scrape, from the database and the running workers
            assert {
                "expensura_relay_lag_events",
                "expensura_relay_published_total",
                "expensura_dead_letters",
                "expensura_projection_lag_seconds",
                "expensura_projection_applied_total",
            } <= names, name
            own = {"identity": "expensura_erasures_pending", "incident": "expensura_incidents_open"}
            if name in own:  # the service's own gauges, read from its database
                assert own[name] in names, name
