"""Containment end to end (SEC-4): real service processes, PostgreSQL and broker. The
response team contains an incident over incident's HTTP API; the request travels as
incident's signed event through the relay and the broker, and the owning services carry it
out: the sharing gateway refuses the leaked partner credential (no new token, and the token
the attacker already holds pulls nothing), identity refuses the staff member's refresh
token, and identity retires its leaked access-token signing key (a token it signed is
refused; the next sign-in's token, signed by a new key, works). Their signed events come
back to incident, whose view shows each request carried out, when, and by which event."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest

from expensura_events.envelope import Actor, utcnow
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import StaffRole
from expensura_identity.app import service_definition as identity
from expensura_identity.auth import service as auth
from expensura_identity.auth.domain import PrincipalKind
from expensura_identity.staff import service as staff
from expensura_ops.testing import tokens
from expensura_ops.testing.signing import PartnerAuth, decode_key
from expensura_ops.testing.stack import LocalStack, eventually

pytestmark = pytest.mark.obligation("SEC-4")

TRIAGE = {
    "category": "hacking",
    "assessment": {
        "data": [{"category": "financial"}],
        "identification": "maximum",
        "confidentiality": "unknown-recipients",
        "malicious": True,
    },
}


async def _contained(stack: LocalStack, measure: str, target: str, owner: str | None = None) -> str:
    """An incident reported, triaged and contained over incident's API; its id."""
    responder = await tokens.staff(stack, "security-officer")
    async with httpx.AsyncClient(
        base_url=stack.processes["incident"].url, headers=responder, timeout=15
    ) as client:
        reported = await client.post(
            "/v1/incidents", json={"summary": "Credentials found in a public paste"}
        )
        assert reported.status_code == 201, reported.text
        incident_id: str = reported.json()["incident_id"]
        (await client.post(f"/v1/incidents/{incident_id}/triage", json=TRIAGE)).raise_for_status()
        contained = await client.post(
            f"/v1/incidents/{incident_id}/containment",
            json={"measure": measure, "target": target} | ({"owner": owner} if owner else {}),
        )
        assert contained.status_code == 200, contained.text
    return incident_id


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _carried_out(stack: LocalStack, incident_id: str, owner: str) -> dict[str, Any]:
    """The incident's containment request once its owner's event came back to incident."""
    responder = await tokens.staff(stack, "security-officer")

    async def done() -> dict[str, Any] | None:
        async with httpx.AsyncClient(
            base_url=stack.processes["incident"].url, headers=responder, timeout=15
        ) as client:
            view = (await client.get(f"/v1/incidents/{incident_id}")).json()
        [request] = view["containment"]
        assert request["owner"] == owner
        return request if request["carried_out_at"] is not None else None

    return await eventually(done, what=f"incident to learn that {owner} carried it out")


async def _credential(stack: LocalStack) -> dict[str, Any]:
    """A registered partner's approved credential (four eyes): client id and secret."""
    officer = await tokens.staff(stack, "privacy-officer")
    partner_id = f"credit-bureau-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(
        base_url=stack.processes["sharing-gateway"].url, headers=officer, timeout=15
    ) as client:
        (
            await client.post(
                "/v1/partners",
                json={"partner_id": partner_id, "name": "Bureau", "kind": "credit-bureau"},
            )
        ).raise_for_status()
        await tokens.approve(stack, "sharing-gateway", f"/v1/partners/{partner_id}")
        issued = await client.post(
            f"/v1/partners/{partner_id}/credentials", json={"scopes": ["credit-assessment"]}
        )
        issued.raise_for_status()
        credential: dict[str, Any] = issued.json()
        await tokens.approve(
            stack,
            "sharing-gateway",
            f"/v1/partners/{partner_id}/credentials/{credential['client_id']}",
        )
    return credential


async def _token(gateway: httpx.AsyncClient, credential: dict[str, Any]) -> httpx.Response:
    return await gateway.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credential["client_id"],
            "client_secret": credential["client_secret"],
        },
    )


async def test_a_leaked_partner_credential_is_refused_after_the_incidents_containment(
    stack: LocalStack,
) -> None:
    leaked = await _credential(stack)
    async with httpx.AsyncClient(
        base_url=stack.processes["sharing-gateway"].url, timeout=15
    ) as gateway:
        # The attacker holds the secret, and a token from before the containment.
        held = await _token(gateway, leaked)
        assert held.status_code == 200, held.text
        auth_ = PartnerAuth(held.json()["access_token"], decode_key(held.json()["request_key"]))

        async def pull() -> httpx.Response:
            return await gateway.post(
                "/v1/disclosures",
                auth=auth_,
                json={
                    "subject_id": str(uuid.uuid4()),
                    "purpose": "credit-assessment",
                    "fields": ["phone"],
                },
            )

        assert (await pull()).status_code != 401  # authenticated (refused for other reasons)
        incident_id = await _contained(stack, "revoke-partner-credential", leaked["client_id"])

        async def refused() -> bool:
            return (await _token(gateway, leaked)).status_code == 401

        await eventually(refused, what="the gateway to revoke the leaked credential")
        assert (await pull()).status_code == 401
    request = await _carried_out(stack, incident_id, "sharing-gateway")
    assert _at(request["carried_out_at"]) >= _at(request["requested_at"])
    assert request["carried_out_event_id"] is not None


async def test_a_staff_members_refresh_token_stops_working_after_the_containment(
    stack: LocalStack,
) -> None:
    rt = ServiceRuntime(identity, stack.settings("identity"))
    try:
        email = f"officer-{uuid.uuid4().hex[:6]}@expensura.example"
        staff_id = await staff.create_staff(
            rt, email, "a long staff password 2026", [StaffRole.RISK_ANALYST], Actor.system("e2e")
        )
        key = await auth.signing_key(rt)
        async with rt.engine.begin() as conn:  # a session, as a staff sign-in issues one
            pair = await auth.issue(
                conn,
                key,
                kind=PrincipalKind.STAFF.value,
                subject=staff_id,
                roles=[StaffRole.RISK_ANALYST.value],
                amr=["pwd", "otp"],
                access_ttl=600,
                refresh_ttl=3600,
                family_expires_at=auth.session_end(rt, PrincipalKind.STAFF, utcnow()),
            )
    finally:
        await rt.close()
    async with httpx.AsyncClient(base_url=stack.processes["identity"].url, timeout=15) as idp:
        refreshed = await idp.post(
            "/v1/sessions/refresh", json={"refresh_token": pair.refresh_token}
        )
        assert refreshed.status_code == 200, refreshed.text
        latest = [refreshed.json()["refresh_token"]]
        incident_id = await _contained(stack, "end-staff-sessions", staff_id)

        async def ended() -> bool:
            answer = await idp.post("/v1/sessions/refresh", json={"refresh_token": latest[-1]})
            assert answer.status_code in (200, 401), answer.text
            if answer.status_code == 200:  # not yet: keep the session's newest token (a
                latest.append(answer.json()["refresh_token"])  # reuse would end it anyway)
                return False
            return "revoked" in answer.text

        await eventually(ended, what="identity to end the staff member's sessions")
    request = await _carried_out(stack, incident_id, "identity")
    assert _at(request["carried_out_at"]) >= _at(request["requested_at"])


async def test_an_access_token_the_leaked_key_signed_is_refused_after_the_rotation(
    stack: LocalStack,
) -> None:
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    _, held = tokens.user(stack, email=email)  # signed by the key about to leak
    leaked = jwt.get_unverified_header(held["authorization"].removeprefix("Bearer "))["kid"]
    async with httpx.AsyncClient(base_url=stack.processes["identity"].url, timeout=15) as idp:
        assert (await idp.get("/v1/me/devices", headers=held)).status_code == 200
        incident_id = await _contained(stack, "rotate-key", leaked, owner="identity")

        async def refused() -> bool:
            return (await idp.get("/v1/me/devices", headers=held)).status_code == 401

        await eventually(refused, what="identity to retire its leaked signing key")
        published = (await idp.get("/.well-known/jwks.json")).json()["keys"]
        assert leaked not in {k["kid"] for k in published}
        signed_in = await idp.post(
            "/v1/sessions", json={"email": email, "password": tokens.PASSWORD}
        )
        signed_in.raise_for_status()
        fresh = signed_in.json()["access_token"]
        assert jwt.get_unverified_header(fresh)["kid"] != leaked
        answer = await idp.get("/v1/me/devices", headers={"authorization": f"Bearer {fresh}"})
        assert answer.status_code == 200, answer.text
    request = await _carried_out(stack, incident_id, "identity")
    assert request["measure"] == "rotate-key"
    assert _at(request["carried_out_at"]) >= _at(request["requested_at"])
