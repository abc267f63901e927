"""Every /internal route of every running service refuses a caller that cannot prove it is
one of the services the route names: no token, a stranger's key, a token for another
service, and a service not on the list. Read from the running services' own OpenAPI
documents (served on their internal listeners), so a route the code table missed would show
up here. And none of them is served on the public listener, whoever asks."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from expensura_events.ed25519 import KeyPair
from expensura_events.service_identity import ServiceIdentity
from expensura_events.topology import SERVICES
from expensura_ops.routes import route_access
from expensura_ops.testing.stack import LocalStack


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


@pytest.mark.obligation("SEC-2")
async def test_every_internal_route_refuses_every_caller_it_does_not_name(
    stack: LocalStack,
) -> None:
    declared = {(r.service, r.path, r.method): r.who for r in route_access() if r.internal}
    names = [s.name.value for s in SERVICES]
    checked = 0
    for name in names:
        url = stack.processes[name].internal_url
        served = httpx.get(f"{url}/openapi.json").json()["paths"]
        for path, operations in served.items():
            if not path.startswith("/internal"):
                continue
            for method in operations:
                who = declared[(name, path, method.upper())]  # the table knows every route
                allowed = names if who == "every service" else who.split(", ")
                target = f"{url}{_concrete(path)}"

                def call(
                    headers: dict[str, str], method: str = method, target: str = target
                ) -> int:
                    return httpx.request(
                        method.upper(), target, headers=headers, json={}
                    ).status_code

                assert call({}) == 401, (name, method, path)
                stranger = ServiceIdentity.from_config(allowed[0], KeyPair.new().private, {})
                assert call(stranger.headers_for(name)) == 401, (name, method, path)
                elsewhere = next(n for n in names if n != name)
                wrong_audience = stack.service_headers(elsewhere, caller=allowed[0])
                assert call(wrong_audience) == 401, (name, method, path)
                for outsider in set(names) - set(allowed):
                    assert call(stack.service_headers(name, caller=outsider)) == 403, (
                        name, method, path, outsider,
                    )  # fmt: skip
                # and an allowed caller gets past the door (whatever the route then answers)
                passed = httpx.request(
                    method.upper(),
                    target,
                    headers=stack.service_headers(name, caller=allowed[0]),
                    json={},
                )
                assert passed.status_code != 401, (name, method, path)
                assert "may not call this route" not in passed.text, (name, method, path)
                checked += 1
    assert checked >= 12


@pytest.mark.obligation("SEC-2")
async def test_no_internal_route_is_served_on_the_public_listener(stack: LocalStack) -> None:
    names = [s.name.value for s in SERVICES]
    checked = 0
    for name in names:
        sp = stack.processes[name]
        served = httpx.get(f"{sp.internal_url}/openapi.json").json()["paths"]
        internal = [p for p in served if p.startswith("/internal")]
        assert internal, name  # every service has at least its log feed
        for path in internal:
            for method in served[path]:
                target = _concrete(path)
                for caller in names:  # whatever service token comes with it
                    resp = httpx.request(
                        method.upper(),
                        f"{sp.url}{target}",
                        headers=stack.service_headers(name, caller=caller),
                        json={},
                    )
                    assert resp.status_code == 404, (name, method, path, caller)
                    assert resp.headers["content-type"] == "application/problem+json"
                # and the same path on the internal listener is there (401 without a token)
                inside = httpx.request(method.upper(), f"{sp.internal_url}{target}", json={})
                assert inside.status_code == 401, (name, method, path)
                checked += 1
    assert checked >= 12
