"""Identity carries out an incident's containment (SEC-4), against real databases: the
incident service's response workflow records `incident.ContainmentRequested` (end-staff-
sessions) in its own log, signed; the record is delivered to identity's
`staff-session-containment` projection the way its runner delivers a Kafka message
(`apply_deliveries`: verified against the topic's owner, then applied once). The staff
member's refresh token stops working and the log names the incident; a request incident did
not sign ends nothing; a redelivery ends nothing twice, and a rebuild replaying incident's
log does not end the sessions the staff member opened since."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pyotp
import pytest

from expensura_events.catalog.incident_response import ContainmentRequested
from expensura_events.deadletters import Delivery
from expensura_events.envelope import Actor
from expensura_events.projections import LocalLogFeed, Outcome, apply_deliveries, rebuild
from expensura_events.runtime import ServiceRuntime
from expensura_events.store import StoredRecord
from expensura_events.vocabulary import StaffRole
from expensura_identity.auth import service as auth
from expensura_identity.auth.domain import RefreshRefused, TokenPair
from expensura_identity.staff import service as staff
from expensura_identity.staff.domain import staff_stream
from expensura_identity.staff.projection import StaffSessionContainment
from expensura_incident.app import service_definition as incident_definition
from expensura_incident.grading.domain import (
    Circumstances,
    Confidentiality,
    DataCategory,
    DataSet,
    EaseOfIdentification,
    assess,
)
from expensura_incident.response import service as response
from expensura_incident.response.domain import Containment, Source, VerisAction
from expensura_ops.testing.stack import LocalStack

pytestmark = pytest.mark.obligation("SEC-4")

PASSWORD = "a long staff password 2026"
CLIENT = "198.51.100.7"
SECURITY = frozenset({"security-officer"})
RESPONDER = "responder-1"
HIGH = assess(
    DataSet(DataCategory.FINANCIAL),
    EaseOfIdentification.MAXIMUM,
    Circumstances(Confidentiality.UNKNOWN_RECIPIENTS, malicious=True),
)


@pytest.fixture(scope="module")
async def incident(provisioned: LocalStack) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime(incident_definition, provisioned.settings("incident"))
    try:
        yield runtime
    finally:
        await runtime.close()


def _projection(rt: ServiceRuntime) -> StaffSessionContainment:
    """Identity's own instance, as its runner holds it (bound to the runtime)."""
    found = next(
        r.projection for r in rt.runners if r.projection.name == "staff-session-containment"
    )
    assert isinstance(found, StaffSessionContainment)
    return found


async def _asked(incident: ServiceRuntime, measure: Containment, target: str) -> StoredRecord:
    """An incident reported, triaged and contained through incident's workflow; the request's
    record as incident's log stores it (signed by incident)."""
    view = await response.report_incident(
        incident,
        summary="A staff laptop was stolen while signed in",
        source=Source.STAFF,
        staff_id=RESPONDER,
        roles=SECURITY,
    )
    await response.triage(
        incident,
        view.incident_id,
        category=VerisAction.PHYSICAL,
        assessment=HIGH,
        staff_id=RESPONDER,
        roles=SECURITY,
    )
    await response.contain(
        incident,
        view.incident_id,
        measure=measure,
        target=target,
        staff_id=RESPONDER,
        roles=SECURITY,
    )
    feed = LocalLogFeed(incident.engine, "incident", [ContainmentRequested.event_type])
    return next(
        r
        for r in await feed.read(0, 100_000)
        if json.loads(r.record)["payload"]["target"] == target
    )


def _delivery(record: StoredRecord) -> Delivery:
    """What the runner makes of a message on incident's topic."""
    return Delivery(
        "incident",
        record.event_id,
        record.record,
        record.seq,
        record.event_type,
        record.signature,
        record.signing_key_id,
    )


async def _deliver(rt: ServiceRuntime, *deliveries: Delivery) -> Outcome:
    async with rt.engine.begin() as conn:
        return await apply_deliveries(
            conn, _projection(rt), rt.mapper, list(deliveries), {}, resolved_by="test"
        )


async def _staff_member(rt: ServiceRuntime) -> tuple[str, str, list[str]]:
    """A security officer with an enrolled authenticator: email, staff id, recovery codes."""
    email = f"officer-{uuid.uuid4().hex[:6]}@expensura.example"
    staff_id = await staff.create_staff(
        rt, email, PASSWORD, [StaffRole.SECURITY_OFFICER], Actor.system("tests")
    )
    setup = await staff.start_totp(rt, staff_id)
    codes = await staff.confirm_totp(rt, staff_id, pyotp.TOTP(setup.secret).now())
    return email, staff_id, codes


async def _signed_in(rt: ServiceRuntime, email: str, recovery_code: str) -> TokenPair:
    step = await staff.sign_in(rt, email, PASSWORD, CLIENT)
    assert step.challenge is not None
    return await staff.second_factor(rt, step.challenge, None, recovery_code, CLIENT)


async def _revocations(rt: ServiceRuntime, staff_id: str) -> list[Any]:
    async with rt.engine.connect() as conn:
        events = await rt.store.read_stream(conn, staff_stream(staff_id))
    return [e.payload for e in events if e.event_type == "identity.StaffSessionsRevoked"]


async def test_the_staff_members_refresh_token_stops_working_after_the_containment(
    rt: ServiceRuntime, incident: ServiceRuntime
) -> None:
    email, staff_id, codes = await _staff_member(rt)
    laptop = await _signed_in(rt, email, codes[0])
    desk = await _signed_in(rt, email, codes[1])
    laptop = await auth.refresh(rt, laptop.refresh_token)  # a live session, refreshed once

    asked = await _asked(incident, Containment.END_STAFF_SESSIONS, staff_id)
    outcome = await _deliver(rt, _delivery(asked))
    assert outcome.applied == [asked.event_id] and not outcome.parked

    for pair in (laptop, desk):
        with pytest.raises(RefreshRefused, match="revoked"):
            await auth.refresh(rt, pair.refresh_token)
    request = json.loads(asked.record)
    [ended] = await _revocations(rt, staff_id)
    assert (ended.reason, ended.sessions) == ("incident-containment", 2)
    assert str(ended.incident_id) == request["payload"]["incident_id"]

    # Redelivered: nothing twice.
    again = await _deliver(rt, _delivery(asked))
    assert (again.applied, again.duplicates) == ([], 1)
    # The staff member signs in again (a new device, after the incident); a rebuild that
    # replays incident's log must not end that session: it is not the incident's.
    later = await _signed_in(rt, email, codes[2])
    replay = await rebuild(
        rt.engine,
        rt.mapper,
        _projection(rt),
        [LocalLogFeed(incident.engine, "incident", [ContainmentRequested.event_type])],
    )
    assert replay.parked == []
    assert await auth.refresh(rt, later.refresh_token)
    assert len(await _revocations(rt, staff_id)) == 1


async def test_a_request_incident_did_not_sign_ends_no_session(
    rt: ServiceRuntime, incident: ServiceRuntime
) -> None:
    email, victim, codes = await _staff_member(rt)
    session = await _signed_in(rt, email, codes[0])
    asked = await _asked(incident, Containment.END_STAFF_SESSIONS, f"staff-{uuid.uuid4().hex}")
    data = json.loads(asked.record)
    data["payload"]["target"] = victim
    data["event_id"] = str(uuid.uuid4())
    tampered = json.dumps(data).encode()
    forged = [
        dataclasses.replace(_delivery(asked), record=tampered, event_id=data["event_id"]),
        dataclasses.replace(
            _delivery(asked), record=tampered, event_id=data["event_id"], signature=None
        ),
    ]
    outcome = await _deliver(rt, *forged)
    assert outcome.applied == []
    assert outcome.rejected == {"signature": 1, "unsigned": 1}
    assert await _revocations(rt, victim) == []
    assert await auth.refresh(rt, session.refresh_token)


async def test_a_request_for_the_gateway_ends_no_staff_session(
    rt: ServiceRuntime, incident: ServiceRuntime
) -> None:
    email, staff_id, codes = await _staff_member(rt)
    session = await _signed_in(rt, email, codes[0])
    asked = await _asked(incident, Containment.REVOKE_PARTNER_CREDENTIAL, staff_id)
    assert (await _deliver(rt, _delivery(asked))).applied == [asked.event_id]
    assert await _revocations(rt, staff_id) == []
    assert await auth.refresh(rt, session.refresh_token)
