"""The README's run command, as a user runs it: no URLs given, so it brings up its own
PostgreSQL and broker, provisions, starts the five services, the API gateway (the app's
only door) and the trace viewer, and stops cleanly and quickly when told to, even when only
`make` is told.

Needs the trace viewer's venv (`make install-traces`, requirements-traces.lock): `make run`
installs it before it starts, as it does here, so the first run of this test takes ~90 s
more on a fresh machine."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from expensura_events.service_identity import ServiceIdentity
from expensura_events.topology import SERVICES
from expensura_ops import dashboards, gateway, prometheus, stack, traces
from expensura_ops.sandboxes.smtp_sink import last_code
from expensura_ops.testing import local_run, tokens

ROOT = Path(__file__).parents[2]
STOP_WITHIN = 15.0  # seconds; about five on an idle two-core machine
# A password hashed or checked (argon2) on a stack just started, on a busy machine: seconds.
SLOW = 30.0

# The identity setting the client-address check below lowers, so three failures throttle.
FAILURES_PER_CLIENT = 3
# The request rate per client the test sets, so that one client passes it in a few requests.
REQUEST_BURST = 30
REQUESTS_PER_SECOND = 2


def _wait(url: str, timeout: float = 90, headers: Callable[[], dict[str, str]] = dict) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2, headers=headers()).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def _flat(attributes: dict[str, object], prefix: str = "") -> dict[str, object]:
    """Phoenix's nested span attributes ({"messaging": {"system": …}}) as dotted keys."""
    flat: dict[str, object] = {}
    for key, value in attributes.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _spans(phoenix: str, trace_id: str) -> list[dict[str, object]]:
    """A trace's spans as Phoenix's REST API answers them (attributes flattened)."""
    resp = httpx.get(
        f"{phoenix}/v1/projects/default/spans",
        params={"trace_id": trace_id, "limit": 1000},
        timeout=10,
    )
    if resp.status_code == 404:  # no span at all yet: no project either
        return []
    resp.raise_for_status()
    found: list[dict[str, object]] = resp.json()["data"]
    for span in found:
        assert isinstance(span["attributes"], dict)
        span["attributes"] = _flat(span["attributes"])
    return found


def _service(span: dict[str, object]) -> object:
    attributes = span["attributes"]
    assert isinstance(attributes, dict)
    return attributes.get("service.name")


def _whole_trace(base: str, trusted: ssl.SSLContext, phoenix: str) -> None:
    """A sign-up through the gateway, with the caller's trace context: its request id is the
    caller's trace id, and that one trace, in the stack's Phoenix, runs from the gateway
    through identity, its event store, its relay and the broker, to the projections of other
    services; Phoenix's link for the id opens it. No span holds the e-mail or password."""
    trace_id = uuid.uuid4().hex
    email, password = f"traced-{trace_id[:8]}@example.com", "traced horse battery staple"
    signed_up = httpx.post(
        f"{base}/v1/accounts",
        json={"email": email, "password": password},
        headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
        verify=trusted,
        timeout=SLOW,
    )
    assert signed_up.status_code == 202, signed_up.text
    assert signed_up.headers["x-request-id"] == trace_id
    deadline = time.monotonic() + 60
    while True:
        spans = _spans(phoenix, trace_id)
        names = {str(s["name"]) for s in spans}
        services = {_service(s) for s in spans} - {None}
        attributes = [s["attributes"] for s in spans]
        published = [s for s in spans if str(s["name"]).endswith(" publish")]
        consumed = [
            s
            for s, a in zip(spans, attributes, strict=True)
            if isinstance(a, dict) and a.get("messaging.consumer.group.name")
        ]
        consumers = {_service(s) for s in consumed}
        appended = [s for s in spans if s["name"] == "eventstore.append"]
        sequenced = [s for s in spans if s["name"] == "eventstore.sequence"]
        if (
            "api-gateway" in names
            and appended
            and sequenced
            and len(services) >= 3
            and published
            and len(consumers - {_service(published[0])}) >= 2
        ):
            break
        shown = sorted((str(_service(s)), str(s["name"])) for s in spans)
        assert time.monotonic() < deadline, f"trace {trace_id} in Phoenix: {shown}"
        time.sleep(0.5)
    assert "expensura-identity" in services and _service(published[0]) == "expensura-identity"
    # identity's event store appended the sign-up's events (by type only), and they got
    # their positions in the log once committed (the sequencer: the head it left)
    assert {_service(s) for s in [*appended, *sequenced]} == {"expensura-identity"}
    assert all(int(s["attributes"]["expensura.head_seq"]) > 0 for s in sequenced), sequenced
    for span in spans:  # nothing personal in what the viewer shows
        text = json.dumps(span)
        assert email not in text and email.split("@")[0] not in text and password not in text
    # one click from the request id: Phoenix's link answers with its app, and what its page
    # asks (the trace by its OTLP id, then the trace's page in its project) is found
    link = httpx.get(traces.trace_link(phoenix, trace_id), timeout=10)
    assert link.status_code == 200 and "text/html" in link.headers["content-type"]
    query = "query($id: String!) { trace: getTraceByOtelId(traceId: $id) { project { id } } }"
    found = httpx.post(
        f"{phoenix}/graphql", json={"query": query, "variables": {"id": trace_id}}, timeout=10
    ).json()
    assert found.get("errors") is None, found
    project = found["data"]["trace"]["project"]["id"]
    page = httpx.get(f"{phoenix}/projects/{project}/traces/{trace_id}", timeout=10)
    assert page.status_code == 200
    # an id with no trace is not found
    missing = httpx.post(
        f"{phoenix}/graphql",
        json={"query": query, "variables": {"id": uuid.uuid4().hex}},
        timeout=10,
    ).json()
    assert missing["data"]["trace"] is None


def _through_gateway(base: str, root_ca: Path, identity: str, phoenix: str) -> None:
    """The app's only door: TLS from the local CA, /v1 to the owner with a request id that
    is the trace the gateway starts and the service continues, the services' /internal,
    /docs and /openapi.json never, the merged document instead, and the client's own
    address (not the gateway's) reaching the service's per-client throttle."""
    deadline = time.monotonic() + 90
    while True:  # the gateway merges the API document, then Caddy writes its CA's root
        try:
            trusted = ssl.create_default_context(cafile=str(root_ca))
            break
        except (OSError, ssl.SSLError):
            assert time.monotonic() < deadline, f"no local CA root at {root_ca}"
            time.sleep(0.2)
    while True:
        try:
            current = httpx.get(f"{base}/v1/policy-versions/current", verify=trusted, timeout=5)
            if current.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the gateway does not answer"
        time.sleep(0.2)
    # consent's route, reached through the gateway, with the trace id as the request id
    assert current.json()["version"] == "1"
    request_id = current.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    # the request id is the trace id: the gateway's span, and consent's server span (its
    # root there: the one without a parent in consent) the gateway span's child
    deadline = time.monotonic() + 30
    while True:
        spans = _spans(phoenix, request_id)
        edge = [s for s in spans if s["name"] == "api-gateway"]
        ids = {s["context"]["span_id"] for s in spans if _service(s) == "expensura-consent"}
        inside = [s for s in spans if _service(s) == "expensura-consent"]
        entered = [s for s in inside if s["parent_id"] not in ids]
        if edge and entered:
            break
        assert time.monotonic() < deadline, f"trace {request_id}: {spans}"
        time.sleep(0.2)
    assert {s["parent_id"] for s in entered} == {edge[0]["context"]["span_id"]}
    assert current.headers["strict-transport-security"].startswith("max-age=")
    # TLS from the local CA only: a client that does not trust it is refused the handshake,
    # and plain HTTP on the app's port gets no API
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{base}/v1/policy-versions/current", timeout=5)
    plain = httpx.get(base.replace("https://", "http://") + "/v1/policy-versions/current")
    assert plain.status_code == 400 and "version" not in plain.text
    with httpx.Client(base_url=base, verify=trusted, timeout=10) as app:
        for closed in ("/internal/known-subjects/x", "/internal/log", "/docs", "/healthz"):
            assert app.get(closed).status_code == 404, closed
        assert app.get("/v1/disclosures").status_code == 404  # a partner route: their entry
        # bodies over 1 MB are refused: by the gateway (a bare 413) or by the service behind
        # it (problem+json), whichever reads the excess first; both limit to 1 MB
        big = b'{"email": "' + b"a" * 1_100_000 + b'@example.com"}'
        refused = app.post(
            "/v1/accounts", content=big, headers={"content-type": "application/json"}
        )
        assert refused.status_code == 413
        # and identity stays reachable: one over-size body does not mark it down for everyone
        assert app.get("/.well-known/jwks.json").status_code == 200
        # the gateway's /openapi.json is the merged document, not a service's
        document = app.get("/openapi.json").json()
        assert document["info"]["title"] == "Expensura app API"
        assert "/v1/me/consents" in document["paths"] and "/v1/loans" in document["paths"]
        assert not [p for p in document["paths"] if not p.startswith(("/v1/", "/.well-known/"))]

    # The client's address: three failed sign-ins from 127.0.0.3 throttle 127.0.0.3 only;
    # were the gateway's address the client, 127.0.0.4 would be throttled too.
    def sign_in(client: str, n: int) -> httpx.Response:
        with httpx.Client(
            transport=httpx.HTTPTransport(local_address=client, verify=trusted), timeout=SLOW
        ) as app:
            body = {"email": f"nobody-{client}-{n}@example.com", "password": "wrong password"}
            return app.post(f"{base}/v1/sessions", json=body)

    assert [sign_in("127.0.0.3", n).status_code for n in range(FAILURES_PER_CLIENT)] == [401] * 3
    throttled = sign_in("127.0.0.3", FAILURES_PER_CLIENT)
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    assert sign_in("127.0.0.4", 0).status_code == 401

    # Every route: a client over its request rate gets 429 with Retry-After from the service
    # behind the gateway (stock Caddy has no rate limiter), and another client does not.
    def policy(client: str) -> httpx.Response:
        with httpx.Client(
            transport=httpx.HTTPTransport(local_address=client, verify=trusted), timeout=SLOW
        ) as app:
            return app.get(f"{base}/v1/policy-versions/current")

    answers = [policy("127.0.0.5") for _ in range(REQUEST_BURST + 10)]
    refused = [a for a in answers if a.status_code == 429]
    assert refused and {a.status_code for a in answers} == {200, 429}
    assert int(refused[0].headers["retry-after"]) > 0
    assert refused[0].headers["content-type"] == "application/problem+json"
    assert policy("127.0.0.6").status_code == 200
    _whole_trace(base, trusted, phoenix)
    # and only the gateway is believed: a local process naming that client is not
    direct = httpx.post(
        f"{identity}/v1/sessions",
        json={"email": "nobody-direct@example.com", "password": "wrong password"},
        headers={"X-Forwarded-For": "127.0.0.3"},
        timeout=SLOW,
    )
    assert direct.status_code == 401


# SEC-2: the per-client sign-in throttle keys on the app's address behind the gateway.
@pytest.mark.obligation("SEC-2")
def test_make_run_starts_everything_and_a_sigint_to_make_alone_stops_it_within_seconds() -> None:
    home = local_run.new_home("run")
    offset = local_run.free_offset()
    env = local_run.user_environment(home, offset)
    env["EXPENSURA_SIGN_IN_FAILURES_PER_CLIENT"] = str(FAILURES_PER_CLIENT)
    env["EXPENSURA_REQUEST_BURST_PER_CLIENT"] = str(REQUEST_BURST)
    env["EXPENSURA_REQUESTS_PER_CLIENT_PER_SECOND"] = str(REQUESTS_PER_SECOND)
    # no collector given: every process of the stack, the gateway included, exports its spans
    # to the Phoenix `make run` starts (promptly, for the test)
    env["OTEL_BSP_SCHEDULE_DELAY"] = "100"
    exe = str(Path(sys.executable).with_name("expensura"))
    # The README's command. A supervisor or an IDE signals the process it started, not its
    # process group: make alone gets the SIGINT, and passes nothing on to its recipe.
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "-C", str(ROOT), "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # as a supervisor starts it: SIGINT at its default, even if this test runs in a
        # backgrounded shell that ignores it (make would then ignore it too)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # read as a terminal would, all along: a full pipe would stall the stack's log, and with
    # it the stack's shutdown
    printed_chunks: list[bytes] = []
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(
        target=lambda: printed_chunks.extend(iter(stdout.read1, b"")), daemon=True
    )
    reader.start()
    ports = stack.ports(offset)
    gateway_url = gateway.url(gateway.GATEWAY_PORT + offset)
    phoenix = traces.url(traces.TRACES_PORT + offset)
    failure: BaseException | None = None
    try:
        for spec in SERVICES:  # both listeners of each service
            _wait(f"http://127.0.0.1:{spec.port + offset}/readyz")
            _wait(f"http://127.0.0.1:{spec.internal_port + offset}/readyz")
        _wait(f"{phoenix}/healthz")
        # the trace viewer takes spans and shows traces to this machine only: neither of its
        # ports is bound to every interface (127.0.0.2 reaches a wildcard bind, never one on
        # 127.0.0.1; Phoenix binds its gRPC receiver to every interface unless told not to)
        if gateway.dial_from() == "127.0.0.2":  # a loopback alias to probe from (not macOS)
            for port in (traces.TRACES_PORT, traces.TRACES_GRPC_PORT):
                assert local_run.is_free(port + offset, "127.0.0.2"), (
                    f"viewer port {port} not loopback"
                )
        identity = f"http://127.0.0.1:{SERVICES[0].port + offset}"
        consent = f"http://127.0.0.1:{SERVICES[1].port + offset}"
        consent_inside = f"http://127.0.0.1:{SERVICES[1].internal_port + offset}"
        resp = httpx.post(
            f"{identity}/v1/accounts",
            json={"email": "first-user@example.com", "password": "correct horse battery staple"},
            timeout=SLOW,
        )
        assert resp.status_code == 202
        # the first code reached the stack's SMTP sink, in var/mail
        deadline = time.monotonic() + 15
        while not last_code(home / "var" / "mail", "first-user@example.com"):
            assert time.monotonic() < deadline, "no code in var/mail"
            time.sleep(0.1)
        # an internal route: as an operator with consent's credentials from var/stack.json
        own = json.loads((home / "var" / "stack.json").read_text())["consent"]
        operator = ServiceIdentity.from_config(
            "consent",
            own["EXPENSURA_SERVICE_KEY"],
            json.loads(own["EXPENSURA_SERVICE_PUBLIC_KEYS"]),
        )
        subject = tokens.signed_in_subject(identity, "first-user@example.com")
        known = f"{consent_inside}/internal/known-subjects/{subject}"
        assert httpx.get(known).status_code == 401  # and not without them
        # and never on the public listener, whatever the caller sends
        public_known = known.replace(consent_inside, consent)
        assert httpx.get(public_known, headers=operator.headers_for("consent")).status_code == 404
        _wait(known, timeout=30, headers=lambda: operator.headers_for("consent"))
        # a fresh stack has a policy version in force, for apps to name in consents
        assert httpx.get(f"{consent}/v1/policy-versions/current").json()["version"] == "1"
        _through_gateway(gateway_url, gateway.root_certificate(home / "var"), identity, phoenix)

        verify = subprocess.run(
            [exe, "log", "verify"], env=env, capture_output=True, text=True, timeout=60
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert verify.stdout.count("intact") == 5
        assert (home / "var" / "postgres" / "PG_VERSION").exists()
        os.kill(proc.pid, signal.SIGINT)  # to make only
        sent = time.monotonic()
        while time.monotonic() - sent < STOP_WITHIN and not all(
            local_run.is_free(p) for p in ports
        ):
            time.sleep(0.1)
        stopped_after = time.monotonic() - sent
        busy = [p for p in ports if not local_run.is_free(p)]  # before any clean-up below
    except BaseException as exc:  # reported with what make run printed, below
        failure = exc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # a test that failed must not leave a stack
        proc.wait(timeout=60)
        reader.join(timeout=30)
        out = b"".join(printed_chunks)
    text = out.decode(errors="replace")
    if failure is not None:
        raise AssertionError(f"{failure!r}; make run printed:\n{text[-6000:]}") from failure
    assert not busy, f"ports {busy} still in use {stopped_after:.1f}s after the SIGINT:\n{text}"
    assert proc.returncode == -signal.SIGINT, text  # make re-raises it once the stack is down
    assert "SIGINT received" in text  # the stack took the clean path, not a kill
    assert "PostgreSQL" in text and "http://127.0.0.1:" in text  # where everything is
    # and where a request's trace opens, and the dashboards ops open
    assert traces.trace_link(phoenix, "<X-Request-Id>") in text
    if prometheus.binary() is not None:
        assert f"Dashboards: http://127.0.0.1:{dashboards.DASHBOARDS_PORT + offset}" in text
    # the first thing `make run` prints (after make's echo of its recipe): the app's door
    printed = [line for line in text.splitlines() if line.strip()]
    assert printed[0].endswith("expensura run") and gateway_url in printed[1], text[:2000]
    shutil.rmtree(home, ignore_errors=True)
