"""The gateway carries out an incident's containment (SEC-4), against real databases: the
incident service's response workflow records `incident.ContainmentRequested` in its own log,
signed; that record is delivered to the gateway's `credential-containment` projection the way
its runner delivers a Kafka message (`apply_deliveries`: verified against the topic's owner,
then applied once). The attacker's view: the leaked credential's token and secret are refused
after the containment; a request on incident's topic that incident did not sign (tampered,
signed by another service, unsigned) revokes nothing; a redelivery or a rebuild revokes
nothing twice. A partner's pull names its credential (`DisclosureMade.client_id`), so the
blast radius can scope to it."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from expensura_events import deadletters
from expensura_events.authenticity import EventSigner
from expensura_events.catalog.incident_response import ContainmentRequested
from expensura_events.contracts.decisions import Basis, BasisKind, DecisionOut
from expensura_events.deadletters import Delivery
from expensura_events.envelope import Actor, utcnow
from expensura_events.four_eyes import Approver, Verdict
from expensura_events.projections import LocalLogFeed, Outcome, apply_deliveries, rebuild
from expensura_events.runtime import ServiceRuntime
from expensura_events.store import StoredRecord
from expensura_events.vocabulary import ActorKind, Purpose
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
from expensura_sharing_gateway.app import service_definition
from expensura_sharing_gateway.disclosures import clients
from expensura_sharing_gateway.disclosures import service as disclosures
from expensura_sharing_gateway.disclosures.domain import DisclosureAsk
from expensura_sharing_gateway.partner_auth import service as auth
from expensura_sharing_gateway.partner_auth.domain import InvalidClient, SignedRequest, sign
from expensura_sharing_gateway.partners import service as partners
from expensura_sharing_gateway.partners.domain import AgreementTerms, PartnerKind
from expensura_sharing_gateway.partners.projection import CredentialContainment

from .conftest import log_of

pytestmark = pytest.mark.obligation("SEC-4")

OFFICER = Actor(kind=ActorKind.STAFF, id="officer-1")
SECOND = Approver(ActorKind.STAFF, "officer-2", frozenset({"privacy-officer"}), True)
SECURITY = frozenset({"security-officer"})
RESPONDER = "responder-1"
HIGH = assess(
    DataSet(DataCategory.FINANCIAL),
    EaseOfIdentification.MAXIMUM,
    Circumstances(Confidentiality.UNKNOWN_RECIPIENTS, malicious=True),
)
BODY = b'{"subject_id": "s-1", "purpose": "credit-assessment", "fields": ["phone"]}'


@pytest.fixture(scope="module")
async def stack(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    provisioned = LocalStack(pg_admin_url, kafka_bootstrap, tmp_path_factory.mktemp("contain"))
    await provisioned.provision()
    try:
        yield provisioned
    finally:
        await provisioned.drop()


@pytest.fixture(scope="module")
async def rt(stack: LocalStack) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime(service_definition, stack.settings("sharing-gateway"))
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture(scope="module")
async def incident(stack: LocalStack) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime(incident_definition, stack.settings("incident"))
    try:
        yield runtime
    finally:
        await runtime.close()


def _projection(rt: ServiceRuntime) -> CredentialContainment:
    """The gateway's own instance, as its runner holds it (bound to the runtime)."""
    found = next(r.projection for r in rt.runners if r.projection.name == "credential-containment")
    assert isinstance(found, CredentialContainment)
    return found


async def _asked(incident: ServiceRuntime, measure: Containment, target: str) -> StoredRecord:
    """An incident reported, triaged and contained through incident's workflow; the request's
    record as incident's log stores it (signed by incident)."""
    view = await response.report_incident(
        incident,
        summary="A partner's client secret was found in a public paste",
        source=Source.STAFF,
        staff_id=RESPONDER,
        roles=SECURITY,
    )
    await response.triage(
        incident,
        view.incident_id,
        category=VerisAction.HACKING,
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
    records = await feed.read(0, 100_000)
    return next(r for r in records if json.loads(r.record)["payload"]["target"] == target)


def _delivery(record: StoredRecord) -> Delivery:
    """What the runner makes of a message on incident's topic (`ProjectionRunner._deliveries`)."""
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


def _signed(token: auth.IssuedToken, nonce: str) -> SignedRequest:
    key = base64.urlsafe_b64decode(token.request_key + "=")
    headers = sign(key, "POST", "/v1/disclosures", "", BODY, nonce, int(time.time()))
    return SignedRequest(
        "POST",
        "/v1/disclosures",
        "",
        BODY,
        headers["content-digest"],
        headers["signature-input"],
        headers["signature"],
    )


def _nonce() -> str:
    return f"nonce-{uuid.uuid4().hex}"


async def _bureau(rt: ServiceRuntime) -> str:
    partner_id = f"bureau-{uuid.uuid4().hex[:6]}"
    await partners.register_partner(rt, partner_id, "B", PartnerKind.CREDIT_BUREAU, OFFICER)
    await partners.decide_partner_request(rt, partner_id, SECOND, Verdict.APPROVE, "seen")
    terms = AgreementTerms(
        "NDA-1",
        (Purpose.CREDIT_ASSESSMENT,),
        ["phone"],
        True,
        utcnow() - timedelta(1),
        utcnow() + timedelta(365),
    )
    agreement_id = await partners.sign_agreement(rt, partner_id, terms, OFFICER)
    await partners.decide_agreement_request(
        rt, partner_id, agreement_id, SECOND, Verdict.APPROVE, "signed copy seen"
    )
    return partner_id


async def _credential(rt: ServiceRuntime, partner_id: str) -> partners.IssuedCredential:
    issued = await partners.issue_credential(rt, partner_id, ["credit-assessment"], 30, OFFICER)
    await partners.decide_credential_request(
        rt, partner_id, issued.credential.client_id, SECOND, Verdict.APPROVE, "needed"
    )
    return issued


async def _revocations(rt: ServiceRuntime, client_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in await log_of(rt, "partner-")
        if e["event_type"] == "sharing.PartnerCredentialRevoked"
        and e["payload"]["client_id"] == client_id
    ]


@pytest.fixture
def consent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Consent's yes and the subject's values (their HTTP is the e2e ring's)."""

    async def decide(urls: Any, subject_id: str, purpose: Purpose, *_: Any, **__: Any) -> Any:
        return DecisionOut(
            decision_id=uuid.uuid4(),
            subject_id=subject_id,
            purpose=purpose,
            recipient="p",
            allowed=True,
            reason="consent in force",
            basis=Basis(kind=BasisKind.CONSENT, consent_id=uuid.uuid4()),
            decided_at=utcnow(),
        )

    async def values(urls: Any, subject_id: str, fields: list[str], *_: Any, **__: Any) -> Any:
        return {f: f"{f}-of-{subject_id}" for f in fields}

    monkeypatch.setattr(clients, "decide", decide)
    monkeypatch.setattr(clients, "disclosable_values", values)


async def test_a_leaked_credential_is_refused_once_the_incident_contains_it(
    rt: ServiceRuntime, incident: ServiceRuntime, consent: None
) -> None:
    partner_id = await _bureau(rt)
    leaked = await _credential(rt, partner_id)
    spare = await _credential(rt, partner_id)  # the partner's other credential: untouched
    client_id = leaked.credential.client_id
    # The attacker holds the secret: a token, and a pull that names the credential.
    token = await auth.issue_token(rt, client_id, leaked.client_secret, "")
    caller = await auth.authenticate(rt, token.access_token, _signed(token, _nonce()))
    assert caller.client_id == client_id
    subject = f"subject-{uuid.uuid4().hex[:8]}"
    made = await disclosures.disclose(
        rt, caller, DisclosureAsk(subject, Purpose.CREDIT_ASSESSMENT, ("phone",))
    )
    [pulled] = await log_of(rt, f"disclosure-{made.disclosure_id}")
    assert pulled["payload"]["client_id"] == client_id  # the blast radius can scope to it

    asked = await _asked(incident, Containment.REVOKE_PARTNER_CREDENTIAL, client_id)
    outcome = await _deliver(rt, _delivery(asked))
    assert outcome.applied == [asked.event_id] and not outcome.parked

    # The token issued before is refused at once, and the secret gets no new one.
    with pytest.raises(InvalidClient, match="revoked"):
        await auth.authenticate(rt, token.access_token, _signed(token, _nonce()))
    with pytest.raises(InvalidClient):
        await auth.issue_token(rt, client_id, leaked.client_secret, "")
    # The audit trail says why: the incident, on behalf of the responder who asked.
    request = json.loads(asked.record)
    [revoked] = await _revocations(rt, client_id)
    assert revoked["payload"]["incident_id"] == request["payload"]["incident_id"]
    assert revoked["actor"]["id"] == RESPONDER
    assert revoked["causation_id"] == asked.event_id
    # Only the named credential: the partner's other one still works.
    assert await auth.issue_token(rt, spare.credential.client_id, spare.client_secret, "")

    # Redelivered (Kafka at least once) and replayed (a rebuild): revoked once, recorded once.
    again = await _deliver(rt, _delivery(asked))
    assert (again.applied, again.duplicates) == ([], 1)
    replay = await rebuild(
        rt.engine,
        rt.mapper,
        _projection(rt),
        [LocalLogFeed(incident.engine, "incident", [ContainmentRequested.event_type])],
    )
    assert replay.parked == []
    assert len(await _revocations(rt, client_id)) == 1


async def test_a_request_incident_did_not_sign_revokes_nothing(
    rt: ServiceRuntime, incident: ServiceRuntime
) -> None:
    partner_id = await _bureau(rt)
    decoy = await _credential(rt, partner_id)  # what the request names genuinely
    victim = await _credential(rt, partner_id)  # what the attacker wants revoked
    asked = await _asked(
        incident, Containment.REVOKE_PARTNER_CREDENTIAL, decoy.credential.client_id
    )
    data = json.loads(asked.record)
    data["payload"]["target"] = victim.credential.client_id
    data["event_id"] = str(uuid.uuid4())
    tampered = json.dumps(data).encode()
    gateway_key = EventSigner.from_base64("sharing-gateway", rt.settings.event_signing_key)
    by_gateway = gateway_key.sign(tampered)  # an insider with the gateway's key
    # The same tampered request under the original signature, re-signed by the gateway, and
    # with no signature at all, each as a message on incident's topic.
    forged = [
        dataclasses.replace(_delivery(asked), record=tampered, event_id=data["event_id"]),
        dataclasses.replace(
            _delivery(asked),
            record=tampered,
            event_id=data["event_id"],
            signature=by_gateway.signature,
            key_id=by_gateway.key_id,
        ),
        dataclasses.replace(
            _delivery(asked), record=tampered, event_id=data["event_id"], signature=None
        ),
    ]
    outcome = await _deliver(rt, *forged)
    assert outcome.applied == []
    assert outcome.rejected == {"signature": 1, "wrong-signer": 1, "unsigned": 1}
    assert await _revocations(rt, victim.credential.client_id) == []
    victim_token = await auth.issue_token(rt, victim.credential.client_id, victim.client_secret, "")
    await auth.authenticate(rt, victim_token.access_token, _signed(victim_token, _nonce()))
    async with rt.engine.connect() as conn:
        [parked] = await deadletters.find(
            conn, projection="credential-containment", event_id=data["event_id"]
        )
    assert parked.status == deadletters.PARKED  # for an operator to see; never applied
    # The genuine request still applies: only what incident signed acts.
    assert (await _deliver(rt, _delivery(asked))).applied == [asked.event_id]
    assert len(await _revocations(rt, decoy.credential.client_id)) == 1


async def test_a_request_for_another_owner_or_measure_is_not_the_gateways(
    rt: ServiceRuntime, incident: ServiceRuntime
) -> None:
    """A staff member's sessions are identity's to end: a credential id as their target
    revokes nothing here."""
    partner_id = await _bureau(rt)
    issued = await _credential(rt, partner_id)
    client_id = issued.credential.client_id
    asked = await _asked(incident, Containment.END_STAFF_SESSIONS, client_id)
    assert (await _deliver(rt, _delivery(asked))).applied == [asked.event_id]
    assert await _revocations(rt, client_id) == []
    assert await auth.issue_token(rt, client_id, issued.client_secret, "")


async def test_an_unknown_credential_is_parked_for_an_operator_not_silently_done(
    rt: ServiceRuntime, incident: ServiceRuntime
) -> None:
    target = f"nobody-{uuid.uuid4().hex[:6]}"
    asked = await _asked(incident, Containment.REVOKE_PARTNER_CREDENTIAL, target)
    outcome = await _deliver(rt, _delivery(asked))
    assert outcome.applied == [] and [p.event_id for p, _ in outcome.parked] == [asked.event_id]
