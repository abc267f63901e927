"""The metrics every service exports on `/metrics` (its internal listener), and the contract
they keep.

`CONTRACT` is the one definition of what is exported: the dashboards and alert rules are
checked against it (`make deploy-check`), and a test checks that the services export exactly
it. The label `service` is the exporting service's name. No label ever holds a subject id, a
raw path or any other personal value: routes are templates, partners are partner ids,
purposes, reasons and severities are closed vocabularies.

Two kinds of series:
- counted and timed where it happens (requests, publications, applies, decisions, appends,
  key-store calls, consent and disclosure changes), in one registry per process;
- read when Prometheus scrapes (lags, open dead letters, pending erasures, open incidents):
  `/metrics` computes them then, as `Reading`s, so that no loop polls while the stack idles.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# name → labels, as the services export them. A histogram is named by its _bucket series;
# its _sum and _count come with it.
CONTRACT: dict[str, frozenset[str]] = {
    "http_server_requests_total": frozenset({"service", "route", "method", "status"}),
    "http_server_request_duration_seconds_bucket": frozenset(
        {"service", "route", "method", "status"}
    ),
    "expensura_relay_lag_events": frozenset({"service"}),
    "expensura_relay_published_total": frozenset({"service"}),
    "expensura_projection_lag_seconds": frozenset({"service", "projection", "source"}),
    "expensura_projection_applied_total": frozenset({"service", "projection"}),
    "expensura_dead_letters": frozenset({"service", "projection"}),
    "expensura_consent_decision_duration_seconds_bucket": frozenset({"service"}),
    "expensura_append_lock_wait_seconds_bucket": frozenset({"service"}),
    "expensura_keystore_duration_seconds_bucket": frozenset({"service", "operation"}),
    "expensura_consents_given_total": frozenset({"purpose"}),
    "expensura_consents_withdrawn_total": frozenset({"purpose"}),
    "expensura_disclosures_total": frozenset({"partner", "purpose"}),
    "expensura_disclosures_refused_total": frozenset({"partner", "reason"}),
    "expensura_erasures_pending": frozenset(),
    "expensura_incidents_open": frozenset({"severity"}),
}


def series_names() -> dict[str, frozenset[str]]:
    """Every series name the contract allows, with its labels: a histogram's `_bucket`
    (with `le`), `_sum` and `_count`."""
    names = dict(CONTRACT)
    for name, labels in CONTRACT.items():
        if name.endswith("_bucket"):
            base = name.removesuffix("_bucket")
            names[name] = labels | {"le"}
            names[base + "_sum"] = labels
            names[base + "_count"] = labels
    return names


REGISTRY = CollectorRegistry(auto_describe=True)

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUESTS = Counter(
    "http_server_requests",
    "Requests answered, by route template (never the raw path).",
    ["service", "route", "method", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Time from a request's arrival to the end of its answer.",
    ["service", "route", "method", "status"],
    registry=REGISTRY,
)
RELAY_PUBLISHED = Counter(
    "expensura_relay_published",
    "Events the outbox relay published (acknowledged by the broker, position saved).",
    ["service"],
    registry=REGISTRY,
)
PROJECTION_APPLIED = Counter(
    "expensura_projection_applied",
    "Events a projection applied from the broker (committed; duplicates not counted).",
    ["service", "projection"],
    registry=REGISTRY,
)
CONSENT_DECISION = Histogram(
    "expensura_consent_decision_duration_seconds",
    "Time to decide and record a use or disclosure (the transaction, commit included).",
    ["service"],
    buckets=_FAST,
    registry=REGISTRY,
)
APPEND_LOCK_WAIT = Histogram(
    "expensura_append_lock_wait_seconds",
    "Time in an append's expensura_stage call: the wait for another writer of the same "
    "stream (its row in stream_versions) and the staging insert.",
    ["service"],
    buckets=_FAST,
    registry=REGISTRY,
)
KEYSTORE_DURATION = Histogram(
    "expensura_keystore_duration_seconds",
    "Time of a key-store call, by operation.",
    ["service", "operation"],
    buckets=_FAST,
    registry=REGISTRY,
)
CONSENTS_GIVEN = Counter(
    "expensura_consents_given",
    "Consents given (committed), by purpose.",
    ["purpose"],
    registry=REGISTRY,
)
CONSENTS_WITHDRAWN = Counter(
    "expensura_consents_withdrawn",
    "Consents withdrawn (committed), by purpose.",
    ["purpose"],
    registry=REGISTRY,
)
DISCLOSURES = Counter(
    "expensura_disclosures",
    "Disclosures made to partners (committed), by partner id and purpose.",
    ["partner", "purpose"],
    registry=REGISTRY,
)
DISCLOSURES_REFUSED = Counter(
    "expensura_disclosures_refused",
    "Disclosure requests refused (the refusal committed), by partner id and reason code.",
    ["partner", "reason"],
    registry=REGISTRY,
)

# Everything the registry holds (a test checks it against CONTRACT).
COUNTED = (
    HTTP_REQUESTS,
    HTTP_DURATION,
    RELAY_PUBLISHED,
    PROJECTION_APPLIED,
    CONSENT_DECISION,
    APPEND_LOCK_WAIT,
    KEYSTORE_DURATION,
    CONSENTS_GIVEN,
    CONSENTS_WITHDRAWN,
    DISCLOSURES,
    DISCLOSURES_REFUSED,
)

# Read at scrape time (`Reading`), never counted in the registry.
_GAUGE_HELP = {
    "expensura_relay_lag_events": "Events the log committed that the relay has not published.",
    "expensura_projection_lag_seconds": (
        "While a projection has records it has not applied: seconds since the source "
        "recorded the last one it applied; 0 once a fetch finds nothing new."
    ),
    "expensura_dead_letters": "Dead letters open (parked or retried, not resolved).",
    "expensura_erasures_pending": "Erasure requests not yet confirmed by every service.",
    "expensura_incidents_open": "Incidents not closed, by severity (ungraded: not yet graded).",
}
SCRAPED = frozenset(_GAUGE_HELP)


@dataclass(frozen=True)
class Reading:
    """One value of a gauge read at scrape time."""

    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in SCRAPED:
            raise ValueError(f"{self.name} is not a gauge of the metrics contract")
        if set(self.labels) != CONTRACT[self.name]:
            raise ValueError(
                f"{self.name} takes labels {sorted(CONTRACT[self.name])}, not {sorted(self.labels)}"
            )


# What a service adds at scrape time (ServiceDefinition.readings); `Any`: the runtime.
ReadingsHook = Callable[[Any], Awaitable[Iterable[Reading]]]


class _Scrape(Collector):
    """One service's view of the registry (a test may run several services in one process:
    each sees only its own `service` series), `_created` series left out, plus the gauges
    read at this scrape."""

    def __init__(self, service: str, readings: Iterable[Reading]) -> None:
        self.service, self.readings = service, list(readings)

    def collect(self) -> Iterator[Metric]:
        for family in REGISTRY.collect():
            samples = [
                s
                for s in family.samples
                if not s.name.endswith("_created")
                and s.labels.get("service", self.service) == self.service
            ]
            family.samples = samples
            yield family
        for name in sorted(SCRAPED):
            gauge = GaugeMetricFamily(name, _GAUGE_HELP[name], labels=sorted(CONTRACT[name]))
            for r in self.readings:
                if r.name == name:
                    gauge.add_metric([r.labels[k] for k in sorted(CONTRACT[name])], r.value)
            yield gauge


def exposition(service: str, readings: Iterable[Reading]) -> bytes:
    """The Prometheus text format of `service`'s series and these readings."""
    return generate_latest(_Scrape(service, readings))


P = ParamSpec("P")
R = TypeVar("R")


def timed_keystore(
    operation: str,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Observe a key-store method's duration under `operation`, for the store's service
    (`self.service`; a store built without one observes nothing)."""

    def wrap(method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(method)
        async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            service = getattr(args[0], "service", None)
            if service is None:
                return await method(*args, **kwargs)
            start = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                KEYSTORE_DURATION.labels(service=service, operation=operation).observe(
                    time.perf_counter() - start
                )

        return timed

    return wrap
