"""Identity rotates its access-token signing key as an incident's containment (SEC-4),
against real databases: the incident service's response workflow records
`incident.ContainmentRequested` (rotate-key, owner identity, target the key's id) in its own
log, signed; the record is delivered to identity's `token-key-containment` projection the
way its runner delivers a Kafka message (`apply_deliveries`: verified against the topic's
owner, then applied once). A token the key signed before is refused after; the next token is
signed by a new key and accepted; the JWKS no longer lists the retired key; the log names the
incident. A request incident did not sign retires nothing; an unknown key is parked; a
redelivery or a rebuild records nothing twice."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pyotp
import pytest

from expensura_events.auth import InvalidToken
from expensura_events.catalog.incident_response import ContainmentRequested
from expensura_events.deadletters import Delivery
from expensura_events.envelope import Actor
from expensura_events.projections import LocalLogFeed, Outcome, apply_deliveries, rebuild
from expensura_events.runtime import ServiceRuntime
from expensura_events.store import StoredRecord
from expensura_events.vocabulary import StaffRole
from expensura_identity.auth import service as auth
from expensura_identity.auth.domain import TokenPair, signing_key_stream
from expensura_identity.auth.projection import TokenKeyContainment
from expensura_identity.staff import service as staff
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


def _projection(rt: ServiceRuntime) -> TokenKeyContainment:
    """Identity's own instance, as its runner holds it (bound to the runtime)."""
    found = next(r.projection for r in rt.runners if r.projection.name == "token-key-containment")
    assert isinstance(found, TokenKeyContainment)
    return found


async def _asked(incident: ServiceRuntime, kid: str, owner: str = "identity") -> StoredRecord:
    """An incident reported, triaged and contained (rotate-key) through incident's workflow;
    the request's record as incident's log stores it (signed by incident)."""
    view = await response.report_incident(
        incident,
        summary="An access-token signing key was found in a public repository",
        source=Source.STAFF,
        staff_id=RESPONDER,
        roles=SECURITY,
    )
    await response.triage(
        incident,
        view.incident_id,
        category=VerisAction.ERROR,
        assessment=HIGH,
        staff_id=RESPONDER,
        roles=SECURITY,
    )
    await response.contain(
        incident,
        view.incident_id,
        measure=Containment.ROTATE_KEY,
        target=kid,
        owner=owner,
        staff_id=RESPONDER,
        roles=SECURITY,
    )
    feed = LocalLogFeed(incident.engine, "incident", [ContainmentRequested.event_type])
    return next(
        r
        for r in await feed.read(0, 100_000)
        if json.loads(r.record)["payload"]["incident_id"] == str(view.incident_id)
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


async def _signed_in(rt: ServiceRuntime) -> TokenPair:
    """A security officer, signed in with their second factor."""
    email = f"officer-{uuid.uuid4().hex[:6]}@expensura.example"
    staff_id = await staff.create_staff(
        rt, email, PASSWORD, [StaffRole.SECURITY_OFFICER], Actor.system("tests")
    )
    setup = await staff.start_totp(rt, staff_id)
    codes = await staff.confirm_totp(rt, staff_id, pyotp.TOTP(setup.secret).now())
    step = await staff.sign_in(rt, email, PASSWORD, CLIENT)
    assert step.challenge is not None
    return await staff.second_factor(rt, step.challenge, None, codes[0], CLIENT)


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def _published(rt: ServiceRuntime) -> set[str]:
    return {k["kid"] for k in (await auth.published_keys(rt))["keys"]}


async def _retirements(rt: ServiceRuntime, kid: str) -> list[Any]:
    async with rt.engine.connect() as conn:
        return await rt.store.read_stream(conn, signing_key_stream(kid))


async def test_a_token_the_retired_key_signed_is_refused_and_a_new_key_signs(
    rt: ServiceRuntime, incident: ServiceRuntime
) -> None:
    before = await _signed_in(rt)
    leaked = _kid(before.access_token)
    assert (await rt.token_verifier.verify(before.access_token)).kind == "staff"

    asked = await _asked(incident, leaked)
    outcome = await _deliver(rt, _delivery(asked))
    assert outcome.applied == [asked.event_id] and not outcome.parked

    # Identity reads its keys at each verification: refused from the retirement's commit.
    with pytest.raises(InvalidToken, match="unknown key"):
        await rt.token_verifier.verify(before.access_token)
    assert leaked not in await _published(rt)
    # The session goes on: its next access token is signed by a new key, and accepted.
    after = await auth.refresh(rt, before.refresh_token)
    assert _kid(after.access_token) != leaked
    assert _kid(after.access_token) in await _published(rt)
    assert (await rt.token_verifier.verify(after.access_token)).kind == "staff"

    [retired] = await _retirements(rt, leaked)
    request = json.loads(asked.record)
    assert retired.event_type == "identity.SigningKeyRetired"
    assert (retired.payload.kid, retired.payload.already_retired) == (leaked, False)
    assert str(retired.payload.incident_id) == request["payload"]["incident_id"]
    assert str(retired.causation_id) == asked.event_id

    # Redelivered: nothing twice. A rebuild replaying incident's log: nothing again, and the
    # key in use now stays trusted.
    again = await _deliver(rt, _delivery(asked))
    assert (again.applied, again.duplicates) == ([], 1)
    replay = await rebuild(
        rt.engine,
        rt.mapper,
        _projection(rt),
        [LocalLogFeed(incident.engine, "incident", [ContainmentRequested.event_type])],
    )
    assert asked.event_id not in [letter.event_id for letter, _ in replay.parked]
    assert len(await _retirements(rt, leaked)) == 1
    assert await rt.token_verifier.verify(after.access_token)


async def test_a_request_incident_did_not_sign_retires_no_key(
    rt: ServiceRuntime, incident: ServiceRuntime
) -> None:
    session = await _signed_in(rt)
    live = _kid(session.access_token)
    asked = await _asked(incident, f"kid-{uuid.uuid4().hex}")
    data = json.loads(asked.record)
    data["payload"]["target"] = live
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
    assert live in await _published(rt)
    assert await _retirements(rt, live) == []
    assert await rt.token_verifier.verify(session.access_token)


async def test_an_unknown_key_is_parked_and_a_keystore_request_is_not_identitys(
    rt: ServiceRuntime, incident: ServiceRuntime
) -> None:
    session = await _signed_in(rt)
    live = _kid(session.access_token)
    unknown = await _asked(incident, f"kid-{uuid.uuid4().hex}")
    parked = await _deliver(rt, _delivery(unknown))
    assert parked.applied == []
    [(letter, error)] = parked.parked
    assert (letter.event_id, type(error).__name__) == (unknown.event_id, "NoSuchSigningKey")
    # The operator's handoff (owner keystore, the default) is not identity's to carry out.
    handed = await _asked(incident, live, owner="keystore")
    assert (await _deliver(rt, _delivery(handed))).applied == [handed.event_id]
    assert live in await _published(rt)
    assert await rt.token_verifier.verify(session.access_token)
