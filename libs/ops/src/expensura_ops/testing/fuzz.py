"""schemathesis over a running service's OpenAPI document: no input may cause a 5xx.

Every operation of the document (served on the internal listener, and describing both) is
exercised on each listener that serves it (expensura_events.web.listeners), with:
- schemathesis' own generation, valid data (positive) and schema-violating data (negative),
  for path, query, header and body parameters alike;
- hostile text poured into a string of the request (body, path, query or header): NUL and
  other control characters, line separators, lone surrogates, very long strings;
- times at the edges: RFC 3339 instants in year 1 and 9999 with offsets up to ±23:59 (some
  fall outside years 1 to 9999 once converted to UTC), times without an offset, impossible dates;
- each principal the routes expect (anonymous, a junk token, an app user, staff with every
  role and MFA, a partner signing each request with a fresh nonce), drawn per request.

Every 5xx and every dropped connection is collected, not raised at once, so one run reports
them all; a 2xx body must match the operation's response schema; no answer may name another
service's local address (a partner must never learn an internal URL from an error).
Generation is derandomized, so a run is reproducible.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from requests.auth import AuthBase
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

from expensura_events.web.listeners import Listener, listeners_of
from expensura_ops.testing.stack import LocalStack, ServiceProcess

Headers = dict[str, str]
"""Extra request headers: the principal's authorization and whatever it must send fresh."""


@dataclass(frozen=True)
class Principal:
    """Who a request is sent as. `headers` is called per request (service tokens are
    short-lived); `auth` signs the request as sent, after any poisoning (a partner's
    signature covers the body and path, and its nonces are single-use)."""

    name: str
    headers: Callable[[], Headers]
    auth: AuthBase | None = None


def as_service(stack: LocalStack, caller: str, audience: str) -> Principal:
    """Another service calling `audience`'s internal routes (a fresh token per request)."""
    return Principal(f"service {caller}", lambda: stack.service_headers(audience, caller=caller))


def static(name: str, headers: Headers) -> Principal:
    return Principal(name, lambda: dict(headers))


ANONYMOUS = static("anonymous", {})
JUNK_TOKEN = static("junk-token", {"authorization": "Bearer not.a.token"})

# Text no service may store or choke on: each must get a 4xx or be kept harmlessly.
HOSTILE_TEXT = (
    "\x00",
    "a\x00b",
    "\x01\x02\x03",
    "\x08",
    "\x0b\x0c",
    "\x1b[31m",
    "\x1f",
    "\x7f",
    "\x85",
    "\x9f",
    "\u2028",
    "\ud800",  # a lone surrogate: valid as a JSON escape, not encodable as UTF-8
    "\ufeff",
    "\u202e",
    "\U0001d518\U0001d52b",
    "%00",
    "'; DROP TABLE x; --",
    "../../etc/passwd",
    "x" * 5000,
    "",
)
# A header can carry neither NUL nor line breaks on the wire; these are what it can carry.
HOSTILE_HEADER_TEXT = ("\t", "\xe9\xff", "x" * 5000, "", "a\tb", "%00", "\x7e" * 3)
EXTREME_TIMES = (
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:00:00-05:00",
    "0001-01-01T00:00:00+23:59",
    "0001-01-01T00:30:00+01:00",
    "2026-11-26T10:00:00",  # no offset
    "2026-02-30T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2026-11-26T10:00:00+24:00",
    "1970-01-01T00:00:00Z",
    "2026-11-26",
)
_LOOKS_LIKE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")
# A local address with a port: the stack's services listen on 127.0.0.1, so one that is not
# the answering service's own is an internal URL leaking to the caller.
_LOCAL_ADDRESS = re.compile(rb"(?:127\.0\.0\.1|localhost|\[::1\]):(\d{2,5})")


def _offsets() -> st.SearchStrategy[timezone]:
    return st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


def instants() -> st.SearchStrategy[str]:
    """RFC 3339 date-times across the whole range, with any offset a clock can have."""
    any_time = st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=_offsets()
    )
    near_now = st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=_offsets()
    )
    edges = st.sampled_from(
        [
            "9999-12-31T23:59:59-23:59",
            "9999-12-31T23:00:00-05:00",
            "0001-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59.999999Z",
            "0001-01-01T00:00:00Z",
        ]
    )
    return st.one_of(edges, any_time.map(datetime.isoformat), near_now.map(datetime.isoformat))


# schemathesis draws every `format: date-time` string from this, in every mode.
schemathesis.openapi.format("date-time", instants())


@dataclass
class Finding:
    operation: str
    principal: str
    request: str
    outcome: str

    def __str__(self) -> str:
        return f"{self.operation} as {self.principal}: {self.outcome}\n    {self.request}"


@dataclass
class FuzzReport:
    operations: int
    exercised: set[str] = field(default_factory=set)
    requests: int = 0
    server_errors: list[Finding] = field(default_factory=list)
    nonconforming: list[Finding] = field(default_factory=list)
    internal_urls: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    waiting: float = 0.0  # of those seconds, waiting for answers (the rest is generation)

    def summary(self) -> str:
        found = [*self.server_errors, *self.nonconforming, *self.internal_urls]
        lines = [
            f"{len(self.exercised)}/{self.operations} operations, {self.requests} requests, "
            f"{self.seconds:.1f}s ({self.waiting:.1f}s waiting for answers), "
            f"{len(self.server_errors)} server errors, "
            f"{len(self.nonconforming)} responses not matching their schema, "
            f"{len(self.internal_urls)} answers naming an internal address"
        ]
        return "\n".join(lines + [str(f) for f in found[:40]])


def _slots(value: Any, where: list[tuple[Any, Any]]) -> None:
    """Every (container, key) holding a string, depth first."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(item, str):
            where.append((value, key))
        elif isinstance(item, dict | list):
            _slots(item, where)


def _string_slots(case: Any, *, headers: bool = True) -> list[tuple[str, Any, Any]]:
    """Where a case carries strings: (location, container, key)."""
    targets: list[tuple[str, Any, Any]] = []
    for location in ("path_parameters", "query", "body"):
        found: list[tuple[Any, Any]] = []
        container = getattr(case, location, None)
        if isinstance(container, dict | list):
            _slots(container, found)
        targets += [(location, c, k) for c, k in found]
    if headers and case.headers:
        targets += [
            ("headers", case.headers, k) for k, v in case.headers.items() if isinstance(v, str)
        ]
    return targets


@st.composite
def _poison(draw: st.DrawFn, case: Any) -> str | None:
    """Replace or infect one string of the case with hostile text; say what was done."""
    if draw(st.integers(0, 2)) == 0:  # a third of the cases go as generated
        return None
    targets = _string_slots(case)
    if not targets:
        return None
    location, container, key = draw(st.sampled_from(targets))
    original: str = container[key]
    if location == "headers":
        hostile = draw(st.sampled_from(HOSTILE_HEADER_TEXT))
    elif _LOOKS_LIKE_TIME.match(original):
        hostile = draw(st.sampled_from(EXTREME_TIMES))
    else:
        hostile = draw(st.sampled_from(HOSTILE_TEXT))
    if draw(st.booleans()) and location != "headers":
        at = draw(st.integers(0, len(original)))
        hostile = original[:at] + hostile + original[at:]
    container[key] = hostile
    return f"{location}[{key!r}] = {hostile[:40]!r}"


def _variants(location: str, original: str) -> list[str]:
    """What the sweep puts in one string: a NUL inside it, and edge times where it is one."""
    middle = len(original) // 2
    # Path parameters arrive percent-encoded: a raw NUL would not survive the URL.
    nul = "%00" if location == "path_parameters" else "\x00"
    out = [original[:middle] + nul + original[middle:]]
    if _LOOKS_LIKE_TIME.match(original):
        out += ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00", original[:19]]
    return out


def _describe(case: Any, poisoned: str | None) -> str:
    body = case.body if not isinstance(case.body, str | bytes) else case.body[:200]
    text = f"{case.method} {case.formatted_path} query={case.query!r} body={body!r}"
    return (text[:600] + "…" if len(text) > 600 else text) + (
        f" poisoned: {poisoned}" if poisoned else ""
    )


@dataclass
class _Target:
    """One operation of one running service on one of its listeners, and where to record
    what it answered."""

    operation: Any
    listener: Listener
    base_url: str
    principals: Sequence[Principal]
    session: requests.Session
    report: FuzzReport

    @property
    def label(self) -> str:
        return f"{self.operation.label} on {self.listener}"

    def send(self, case: Any, who: Principal, poisoned: str | None) -> int | None:
        """Send the case as `who`; record a 5xx, a dropped connection or a 2xx body that
        does not match its schema. Returns the status, None if nothing was answered."""
        request = _describe(case, poisoned)
        self.report.requests += 1
        sent = time.monotonic()
        try:
            response = case.call(
                base_url=self.base_url,
                session=self.session,
                headers=who.headers(),
                timeout=30,
                auth=who.auth,
            )
        except (requests.exceptions.InvalidHeader, UnicodeError):
            return None  # the client cannot send it (a header, a lone surrogate in a URL)
        except requests.RequestException as exc:
            self.report.server_errors.append(Finding(self.label, who.name, request, repr(exc)))
            return None
        self.report.exercised.add(self.label)
        self.report.waiting += time.monotonic() - sent
        status = int(response.status_code)
        if leaked := internal_addresses(response.content, self.base_url):
            outcome = f"{status} names {', '.join(leaked)}: {response.text[:200]}"
            self.report.internal_urls.append(Finding(self.label, who.name, request, outcome))
        if status >= 500:
            outcome = f"{status} {response.text[:300]}"
            self.report.server_errors.append(Finding(self.label, who.name, request, outcome))
        elif 200 <= status < 300:
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except (AssertionError, FailureGroup) as exc:
                outcome = f"{status}: {str(exc)[:300]}"
                self.report.nonconforming.append(Finding(self.label, who.name, request, outcome))
        return status


def _base_urls(service: ServiceProcess) -> dict[Listener, str]:
    return {Listener.PUBLIC: service.url, Listener.INTERNAL: service.internal_url}


def internal_addresses(body: bytes, own_url: str) -> list[str]:
    """The local addresses in an answer other than the answering service's own."""
    own = own_url.rsplit(":", 1)[-1].rstrip("/")
    return sorted(
        {m.group(0).decode() for m in _LOCAL_ADDRESS.finditer(body) if m.group(1).decode() != own}
    )


def fuzz_service(
    service: ServiceProcess,
    principals: Sequence[Principal],
    *,
    max_examples: int = 8,
    sweep_examples: int = 2,
    only: Callable[[str], bool] | None = None,
) -> FuzzReport:
    """Exercise every operation of the service's document on every listener that serves
    it (the shared ones, such as `/v1/me/data`, on both); return what was found."""
    urls = _base_urls(service)
    schema: Any = schemathesis.openapi.from_url(f"{urls[Listener.INTERNAL]}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    if only is not None:
        operations = [o for o in operations if only(o.label)]
    placed = [(o, listener) for o in operations for listener in listeners_of(o.path)]
    report = FuzzReport(operations=len(placed))
    sessions = {listener: requests.Session() for listener in Listener}  # one connection each
    started = time.monotonic()
    for operation, listener in placed:
        target = _Target(
            operation, listener, urls[listener], principals, sessions[listener], report
        )
        _random_phase(target, max_examples)
        _sweep_phase(target, sweep_examples)
    report.seconds = time.monotonic() - started
    return report


_SETTINGS = settings(
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # findings are collected, not shrunk
    suppress_health_check=list(HealthCheck),
)


def _random_phase(target: _Target, max_examples: int) -> None:
    """schemathesis' valid and invalid requests, a string of each often made hostile, sent
    as a principal drawn for each."""
    cases = st.one_of(
        target.operation.as_strategy(GenerationMode.POSITIVE),
        target.operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=cases, who=st.sampled_from(list(target.principals)), data=st.data())
    @settings(_SETTINGS, max_examples=max_examples)
    def exercise(case: Any, who: Principal, data: st.DataObject) -> None:
        target.send(case, who, data.draw(_poison(case)))

    exercise()


def _sweep_phase(target: _Target, examples: int) -> None:
    """Every string of a valid request in turn made hostile (a NUL inside it; edge times
    where it is a time), sent as a principal the operation accepts, so that no parameter
    is left to chance."""

    chosen: list[Principal] = []

    @given(case=target.operation.as_strategy(GenerationMode.POSITIVE))
    @settings(_SETTINGS, max_examples=examples)
    def sweep(case: Any) -> None:
        if not chosen:  # the most privileged principal the operation lets in, found once
            for who in reversed(target.principals):
                if target.send(case, who, None) not in (401, 403):
                    chosen.append(who)
                    break
            else:
                chosen.append(target.principals[-1])
        who = chosen[0]
        for location, container, key in _string_slots(case, headers=False):
            original = container[key]
            for variant in _variants(location, original):
                container[key] = variant
                target.send(case, who, f"{location}[{key!r}] = {variant[:40]!r}")
            container[key] = original

    sweep()


HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def documented_operations(service: ServiceProcess) -> int:
    """How many (operation, listener) pairs the service's OpenAPI document implies,
    counted from the JSON: each operation once per listener that serves its path."""
    url = f"{service.internal_url}/openapi.json"
    paths = requests.get(url, timeout=10).json()["paths"]
    return sum(
        len(listeners_of(path))
        for path, item in paths.items()
        for method in item
        if method in HTTP_METHODS
    )


def assert_no_server_errors(
    service: ServiceProcess, principals: Sequence[Principal], *, max_examples: int = 8
) -> FuzzReport:
    """Fuzz every operation on both listeners; fail listing every 5xx, dropped connection,
    2xx body that does not match its schema and answer naming another service's address,
    or if any documented operation was never reached on a listener that serves it."""
    report = fuzz_service(service, principals, max_examples=max_examples)
    print(report.summary())  # shown with -s, and kept in the report on failure
    assert report.operations == documented_operations(service)
    # both listeners were exercised: the public API and the internal routes
    assert {label.rsplit(" on ", 1)[1] for label in report.exercised} == set(Listener)
    assert len(report.exercised) == report.operations, report.summary()
    assert not report.server_errors, report.summary()
    assert not report.nonconforming, report.summary()
    assert not report.internal_urls, report.summary()
    return report
