"""Data-subject rights across all five services: export (RGT-1), cancellation with
cooling-off, stop, erasure everywhere and the certificate (RUL-2, RGT-3, POL-2)."""

from __future__ import annotations

import hashlib
import json
import uuid

import httpx
import pytest

from expensura_events.topology import SERVICES, events_topic
from expensura_ops.testing import tokens
from expensura_ops.testing.dumps import pg_dump
from expensura_ops.testing.stack import LocalStack, eventually, topics_messages

PASSWORD = "correct horse battery staple"


def _sign_up_and_in(idp: str, email: str, phone: str) -> tuple[str, dict[str, str]]:
    resp = httpx.post(
        f"{idp}/v1/accounts", json={"email": email, "phone": phone, "password": PASSWORD}
    )
    assert resp.status_code == 202, resp.text
    signed_in = httpx.post(f"{idp}/v1/sessions", json={"email": email, "password": PASSWORD})
    access = signed_in.json()["access_token"]
    return tokens.subject_of(access), {"authorization": f"Bearer {access}"}


@pytest.mark.obligation("RGT-1")
async def test_export_gathers_what_every_service_holds_in_one_file(stack: LocalStack) -> None:
    idp = stack.processes["identity"].url
    email = f"export-{uuid.uuid4().hex[:8]}@example.com"
    subject, auth = _sign_up_and_in(idp, email, "+14155550111")
    consent = stack.processes["consent"].internal_url

    async def projected() -> bool:
        return (
            httpx.get(
                f"{consent}/internal/known-subjects/{subject}", auth=stack.operator
            ).status_code
            == 200
        )

    await eventually(projected, what="consent to know the subject")
    resp = httpx.post(f"{idp}/v1/me/exports", headers=auth, timeout=30)
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert sorted(doc["services"]) == sorted(s.name.value for s in SERVICES)
    identity_events = doc["services"]["identity"]["events"]
    opened = next(e for e in identity_events if e["event_type"] == "identity.AccountOpened")
    assert opened["payload"]["email"] == email  # decrypted for its owner
    assert subject in str(doc["services"]["consent"]["read_models"]["known-subjects"])
    html = httpx.post(f"{idp}/v1/me/exports", headers=auth | {"accept": "text/html"}, timeout=30)
    assert html.headers["content-type"].startswith("text/html") and email in html.text
    # the checksum is of the very bytes received, in either format, and the log keeps it
    for delivered in (resp, html):
        digest = delivered.headers["x-content-sha256"]
        assert hashlib.sha256(delivered.content).hexdigest() == digest
    # the request and the delivery are events; so is every service's read for the export
    log = httpx.get(
        f"{stack.processes['identity'].internal_url}/internal/log",
        params={"limit": 5000},
        auth=stack.operator,
    ).json()["events"]
    mine = [e["event_type"] for e in log if e["subject_id"] == subject]
    assert mine.count("rights.DataExportRequested") == 2
    assert mine.count("rights.DataExportDelivered") == 2
    logged = {
        json.loads(e["record"])["payload"]["sha256"]
        for e in log
        if e["subject_id"] == subject and e["event_type"] == "rights.DataExportDelivered"
    }
    assert logged == {resp.headers["x-content-sha256"], html.headers["x-content-sha256"]}
    assert "platform.PersonalDataAccessed" in mine
    # another user's token gets their own data, never this subject's
    _, other = _sign_up_and_in(idp, f"o-{uuid.uuid4().hex[:8]}@example.com", "+14155550112")
    theirs = httpx.post(f"{idp}/v1/me/exports", headers=other, timeout=30).json()
    assert email not in str(theirs)


@pytest.mark.obligation("RUL-2", "RGT-3", "POL-2")
async def test_cancellation_cooling_off_then_erasure_everywhere_with_a_certificate(
    fresh_stack: LocalStack,
) -> None:
    fresh_stack.start_all(
        EXPENSURA_COOLING_OFF_SECONDS="2", EXPENSURA_RIGHTS_WORKER_INTERVAL_SECONDS="0.2"
    )
    idp = fresh_stack.processes["identity"].url
    email, phone = f"gone-{uuid.uuid4().hex[:8]}@example.com", "+14155550999"
    subject, auth = _sign_up_and_in(idp, email, phone)
    # real-name verification puts the ID card and bank card numbers in the log too
    ident, card = "11010119900307803X", "6228480402564890018"
    verified = httpx.post(
        f"{idp}/v1/me/verification",
        headers=auth,
        json={"id_number": ident, "bank_card": card, "mobile": "+8613800138000"},
        timeout=30,
    )
    assert verified.json()["state"] == "verified", verified.text
    kept_email = f"kept-{uuid.uuid4().hex[:8]}@example.com"
    kept, _ = _sign_up_and_in(idp, kept_email, "+14155550998")
    consent = fresh_stack.processes["consent"].internal_url

    async def projected() -> bool:
        return all(
            httpx.get(
                f"{consent}/internal/known-subjects/{s}", auth=fresh_stack.operator
            ).status_code
            == 200
            for s in (subject, kept)
        )

    await eventually(projected, what="consent to know both subjects")

    # the user can take it back during cooling-off …
    first = httpx.post(f"{idp}/v1/me/cancellation", headers=auth)
    assert first.status_code == 202 and first.json()["state"] == "cooling-off"
    assert httpx.post(f"{idp}/v1/me/cancellation", headers=auth).status_code == 409
    back = httpx.delete(f"{idp}/v1/me/cancellation", headers=auth)
    assert back.status_code == 200 and back.json()["state"] == "withdrawn"
    # … and when they do not, processing stops and every store erases
    request_id = httpx.post(f"{idp}/v1/me/cancellation", headers=auth).json()["request_id"]

    async def certified() -> dict[str, object] | None:
        resp = httpx.get(f"{idp}/v1/erasure-certificates/{request_id}")
        return resp.json() if resp.status_code == 200 else None

    certificate = await eventually(certified, timeout=60, what="the erasure certificate")
    assert sorted(certificate["services"]) == sorted(s.name.value for s in SERVICES)
    assert certificate["key_destroyed"] is True

    # nothing readable is left anywhere: no database dump, no Kafka message
    databases = [fresh_stack.namespace + s.database for s in SERVICES]
    databases.append(fresh_stack.namespace + "expensura_keystore")
    topics = [events_topic(s.name, fresh_stack.namespace) for s in SERVICES]
    read = await topics_messages(fresh_stack.bootstrap_servers, topics, strict=True)
    messages = [value for topic in topics for _, value, _ in read[topic]]
    for secret in (email.encode(), phone.encode(), ident.encode(), card.encode()):
        for db in databases:
            assert secret not in pg_dump(fresh_stack.admin_url, db), db
        assert not [m for m in messages if secret in m]
    assert fresh_stack.cli("log", "verify").returncode == 0

    # the erased subject is gone from other services' read models; the other one is not
    assert (
        httpx.get(
            f"{consent}/internal/known-subjects/{subject}", auth=fresh_stack.operator
        ).status_code
        == 404
    )
    assert (
        httpx.get(
            f"{consent}/internal/known-subjects/{kept}", auth=fresh_stack.operator
        ).status_code
        == 200
    )
    # and cannot sign in, nor use the old token to reach their data
    again = httpx.post(f"{idp}/v1/sessions", json={"email": email, "password": PASSWORD})
    assert again.status_code == 401
    assert httpx.post(f"{idp}/v1/me/exports", headers=auth).status_code in (401, 409)
    # every route that reads the erased subject's events answers a clean problem, over one
    # kept-alive connection (an unhandled error would reset it and fail the next request)
    with httpx.Client(base_url=idp, headers=auth, timeout=10) as client:
        for method, path, body in [
            ("GET", "/v1/me", None),
            ("GET", "/v1/me", None),
            ("GET", "/v1/me/devices", None),
            ("GET", "/v1/me/feedback", None),
            ("PATCH", "/v1/me/contact-details", {"phone": "+14155550100"}),
            ("POST", "/v1/me/feedback", {"message": "still there?"}),
        ]:
            resp = client.request(method, path, json=body)
            assert resp.status_code in (401, 409, 410), (method, path, resp.text)
            assert resp.headers["content-type"] == "application/problem+json"
    # a staff look-up finds no customer: the redacted marker is not a contact detail
    security = await tokens.staff(fresh_stack, "security-officer")
    lookup = httpx.post(
        f"{idp}/v1/staff/lookups",
        headers=security,
        json={
            "account_id": subject,
            "verification": {"email": email, "phone_last4": phone[-4:]},
            "case_reference": "case-after-erasure",
            "purpose": "security",
        },
    )
    assert lookup.status_code == 404, lookup.text
