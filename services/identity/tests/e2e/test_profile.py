"""Profile, devices, anonymous interactions, feedback and corrections through the API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from expensura_ops.testing import personal, tokens
from expensura_ops.testing.dumps import pg_dump
from expensura_ops.testing.stack import LocalStack, eventually

IDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC"


@pytest.fixture
def idp(stack: LocalStack) -> httpx.Client:
    """Identity's public listener."""
    return httpx.Client(base_url=stack.processes["identity"].url, timeout=10)


@pytest.fixture
def inside(stack: LocalStack) -> httpx.Client:
    """Identity's internal listener, with an operator's service token on /internal paths."""
    sp = stack.processes["identity"]
    return httpx.Client(base_url=sp.internal_url, timeout=10, auth=stack.operator)


def _head(inside: httpx.Client) -> int:
    return int(inside.get("/internal/log", params={"limit": 1}).json()["head"])


@pytest.mark.obligation("COL-1", "COL-4")
def test_devices_keep_the_idfa_only_with_tracking_permission(
    idp: httpx.Client, inside: httpx.Client, stack: LocalStack
) -> None:
    _, auth = tokens.user(stack)
    device = {"model": "iPhone16,2", "os_version": "iOS 20.1", "app_version": "4.2.0"}
    head = _head(inside)
    refused = idp.post(
        "/v1/me/devices", headers=auth, json=device | {"tracking_allowed": False, "idfa": IDFA}
    )
    assert refused.status_code == 422 and "tracking" in refused.json()["detail"]
    assert _head(inside) == head  # nothing stored
    plain = idp.post("/v1/me/devices", headers=auth, json=device | {"tracking_allowed": False})
    tracked = idp.post(
        "/v1/me/devices", headers=auth, json=device | {"tracking_allowed": True, "idfa": IDFA}
    )
    assert plain.status_code == tracked.status_code == 201
    listed = idp.get("/v1/me/devices", headers=auth).json()
    assert [d["idfa"] for d in listed] == [None, IDFA]
    assert {d["channel"] for d in listed} == {"actively-collected"}


@pytest.mark.obligation("COL-3")
def test_interactions_are_stored_without_any_identifier(
    idp: httpx.Client, stack: LocalStack
) -> None:
    subject, _ = tokens.user(stack)
    marker = uuid.uuid4().hex
    batch = [
        {
            "type": "click",
            "screen": "loan/offer",
            "element": "apply",
            "occurred_at": datetime.now(UTC).isoformat(),
            "user_id": subject,
            "device_id": f"dev-{marker}",
            "idfa": IDFA,
            "ip": "203.0.113.77",
            "email": f"{marker}@example.com",
        },
        {
            "type": "page_view",
            "screen": "home",
            "occurred_at": datetime.now(UTC).isoformat(),
            "session_id": f"sess-{marker}",
        },
    ]
    resp = idp.post("/v1/interactions", json=batch)
    assert resp.status_code == 202 and resp.json()["accepted"] == 2
    dump = pg_dump(stack.admin_url, stack.namespace + "expensura_identity")
    assert b"loan/offer" in dump  # stored …
    for identifier in (marker, "203.0.113.77", IDFA):  # … with nothing that points at anyone
        assert identifier.encode() not in dump
    assert (
        idp.post(
            "/v1/interactions", json=[{"type": "purchase", "screen": "x", "occurred_at": "now"}]
        ).status_code
        == 422
    )


@pytest.mark.obligation("USE-9")
def test_feedback_is_kept_and_reading_it_is_logged(
    idp: httpx.Client, inside: httpx.Client, stack: LocalStack
) -> None:
    subject, auth = tokens.user(stack)
    sent = idp.post(
        "/v1/me/feedback",
        headers=auth,
        json={"message": "The repayment screen is confusing", "may_contact": True},
    )
    assert sent.status_code == 201
    assert [f["message"] for f in idp.get("/v1/me/feedback", headers=auth).json()] == [
        "The repayment screen is confusing"
    ]
    log = inside.get("/internal/log", params={"limit": 5000}).json()["events"]
    mine = [e["event_type"] for e in log if e["subject_id"] == subject]
    assert "identity.FeedbackReceived" in mine and "platform.PersonalDataAccessed" in mine
    assert (
        idp.post("/v1/me/feedback", headers=auth, json={"message": "x" * 6000}).status_code == 422
    )


@pytest.mark.obligation("RGT-2", "COL-4")
async def test_a_correction_is_an_event_every_projection_follows(
    idp: httpx.Client, stack: LocalStack
) -> None:
    subject, auth = tokens.user(stack, phone="+14155550188")
    before = idp.get("/v1/me", headers=auth).json()
    assert before["email"]["channel"] == "provided-by-user"
    new_email = f"corrected-{uuid.uuid4().hex[:8]}@example.com"
    personal.record("a corrected e-mail", new_email)
    corrected = idp.patch("/v1/me/contact-details", headers=auth, json={"email": new_email})
    assert corrected.status_code == 200 and corrected.json()["email"]["value"] == new_email
    assert idp.get("/v1/me", headers=auth).json()["phone"]["value"] == "+14155550188"
    # sign-in follows the correction
    ok = idp.post("/v1/sessions", json={"email": new_email, "password": tokens.PASSWORD})
    assert ok.status_code == 200
    old = idp.post(
        "/v1/sessions", json={"email": before["email"]["value"], "password": tokens.PASSWORD}
    )
    assert old.status_code == 401
    # another service's copy follows the event
    incident = stack.processes["incident"].internal_url

    async def followed() -> bool:
        resp = httpx.post(
            f"{incident}/internal/notification-contacts/{subject}/email-check",
            json={"email": new_email},
            auth=stack.operator,
        )
        return resp.status_code == 200 and resp.json()["matches"]

    await eventually(followed, what="the incident service to follow the correction")
    bad = idp.patch("/v1/me/contact-details", headers=auth, json={"phone": "555-0100"})
    assert bad.status_code == 422
    assert idp.patch("/v1/me/contact-details", json={"phone": "+14155550100"}).status_code == 401


@pytest.mark.obligation("USE-10")
async def test_a_channel_choice_is_recorded_and_incidents_copy_follows_it(
    idp: httpx.Client, inside: httpx.Client, stack: LocalStack
) -> None:
    subject, auth = tokens.user(stack)  # no phone on file
    token = f"fcm-{uuid.uuid4().hex}"
    address = f"Ann Lee\n{uuid.uuid4().int % 9000 + 100} Elm Street\nSpringfield, IL 62704"
    personal.record("a push token", token)
    personal.record("a mailing address", address)
    head = _head(inside)
    for refused in (
        {"channels": ["sms"]},  # no phone on file
        {"channels": ["push"]},  # no token
        {"channels": ["letter"], "mailing_address": "somewhere"},
        {"channels": ["email", "email"]},
        {"channels": []},
        {"channels": ["fax"]},
        {"channels": ["email"], "language": "not a language"},
    ):
        answer = idp.put("/v1/me/notification-preferences", headers=auth, json=refused)
        assert answer.status_code == 422, refused
        assert "somewhere" not in answer.text
    assert _head(inside) == head  # nothing recorded

    chosen = idp.put(
        "/v1/me/notification-preferences",
        headers=auth,
        json={
            "channels": ["push", "letter"],
            "push_token": token,
            "mailing_address": address,
            "language": "es-MX",
        },
    )
    assert chosen.status_code == 200
    assert chosen.json() == {
        "channels": ["push", "letter"],
        "push_token_on_file": True,
        "mailing_address_on_file": True,
        "language": "es-MX",
    }
    assert token not in chosen.text  # not echoed
    incident = stack.processes["incident"].internal_url

    async def followed() -> dict[str, object] | None:
        resp = httpx.get(
            f"{incident}/internal/notification-contacts/{subject}", auth=stack.operator
        )
        body: dict[str, object] = resp.json()
        return body if body.get("notice_channels") == ["push", "letter"] else None

    check = await eventually(followed, what="the incident service to follow the choice")
    assert check["push_token_present"] and check["mailing_address_present"]
    assert token not in str(check)
    assert (
        idp.put("/v1/me/notification-preferences", json={"channels": ["email"]}).status_code == 401
    )
