"""The blast radius against a real database (SEC-5): access and disclosure events appended to
identity's and the gateway's logs, signed and sealed, applied to incident's exposure index
through the library's rebuild (signatures checked), then computed: exactly the subjects the
test exposed, values sealed under a safe key excluded, the source chains checked, the result
recorded with its subject list sealed. Over HTTP, only the response team gets it."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from expensura_events.auth import Principal
from expensura_events.catalog.incident_exposure import BlastRadiusComputed, ScopeKind
from expensura_events.catalog.sharing import DisclosureMade
from expensura_events.cipher import LOOKUP_HMAC
from expensura_events.envelope import Actor, EventEnvelope, new_event_id, utcnow
from expensura_events.privacy.access import access_record
from expensura_events.projections import LocalLogFeed, rebuild
from expensura_events.runtime import ServiceDefinition, ServiceRuntime
from expensura_events.streams import access_stream
from expensura_events.tables import event_log
from expensura_events.testing.tokens import IssuedTokens
from expensura_events.topology import service
from expensura_events.vocabulary import ActorKind, Purpose
from expensura_events.web.app import create_app
from expensura_incident.app import service_definition
from expensura_incident.exposure import service as blast
from expensura_incident.exposure.domain import INDEXED_TYPES, Scope
from expensura_incident.exposure.projection import ExposureIndex
from expensura_incident.regimes.domain import Protection
from expensura_incident.response import service as response
from expensura_incident.response.domain import Source
from expensura_incident.tables import blast_radius_results, exposure_index
from expensura_ops.testing.stack import LocalStack

pytestmark = pytest.mark.obligation("SEC-5")


@pytest.fixture(scope="module")
async def provisioned(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    stack = LocalStack(pg_admin_url, kafka_bootstrap, tmp_path_factory.mktemp("blast"))
    await stack.provision()
    try:
        yield stack
    finally:
        await stack.drop()


@pytest.fixture(scope="module")
async def runtimes(
    provisioned: LocalStack,
) -> AsyncIterator[dict[str, ServiceRuntime]]:
    """Incident, and identity and the gateway (as they append to their own logs)."""

    def as_(name: str) -> ServiceDefinition:
        spec = service(name)
        return dataclasses.replace(service_definition, spec=spec, projections=(), workers=())

    out = {"incident": ServiceRuntime(service_definition, provisioned.settings("incident"))}
    for name in ("identity", "sharing-gateway"):
        out[name] = ServiceRuntime(as_(name), provisioned.settings(name))
    try:
        yield out
    finally:
        for rt in out.values():
            await rt.close()


@pytest.fixture(scope="module")
def rt(runtimes: dict[str, ServiceRuntime]) -> ServiceRuntime:
    return runtimes["incident"]


def _feeds(runtimes: dict[str, ServiceRuntime]) -> dict[str, LocalLogFeed]:
    return {n: LocalLogFeed(r.engine, n) for n, r in runtimes.items()}


async def _index(runtimes: dict[str, ServiceRuntime]) -> None:
    """Every indexed event of the two logs, applied as a rebuild applies them (verified)."""
    rt = runtimes["incident"]
    feeds = [
        LocalLogFeed(runtimes[n].engine, n, sorted(INDEXED_TYPES))
        for n in ("identity", "sharing-gateway")
    ]
    outcome = await rebuild(rt.engine, rt.mapper, ExposureIndex(), feeds)
    assert outcome.parked == []


async def _read(
    rt: ServiceRuntime, subject: str, actor: Actor, fields: list[str], at: datetime
) -> None:
    event = access_record(
        rt,
        subject_id=subject,
        actor=actor,
        purpose=Purpose.CUSTOMER_CARE,
        fields=fields,
        categories=["pd:Contact"],
    ).model_copy(update={"occurred_at": at})
    async with rt.engine.begin() as conn:
        await rt.append(conn, [event])


async def _disclose(
    rt: ServiceRuntime, subject: str, partner: str, at: datetime, client_id: str | None = None
) -> None:
    payload = DisclosureMade(
        disclosure_id=uuid.uuid4(),
        partner_id=partner,
        fields=["email", "phone"],
        decision_id=uuid.uuid4(),
        decided_at=at,
        basis={"ground": "consent"},
        agreement_id=uuid.uuid4(),
        client_id=client_id,
    )
    event = EventEnvelope(
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        source=rt.name,
        stream_id=f"disclosure-{payload.disclosure_id}",
        stream_version=0,
        subject_id=subject,
        actor=Actor(kind=ActorKind.PARTNER, id=partner),
        purpose=Purpose.IDENTITY_VERIFICATION,
        correlation_id=new_event_id(),
        occurred_at=at,
        payload=payload,
    )
    async with rt.engine.begin() as conn:
        await rt.append(conn, [event])


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


async def test_the_blast_radius_of_real_events_is_exactly_the_exposed_subjects(
    runtimes: dict[str, ServiceRuntime], rt: ServiceRuntime
) -> None:
    identity, gateway = runtimes["identity"], runtimes["sharing-gateway"]
    start = utcnow() - timedelta(days=10)
    end = start + timedelta(days=7)
    alice = Actor(kind=ActorKind.STAFF, id=f"alice-{uuid.uuid4().hex[:6]}", role="customer-service")
    bob = Actor(kind=ActorKind.STAFF, id=f"bob-{uuid.uuid4().hex[:6]}")
    partner, other = f"acme-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    loans = Actor.system(f"loans-{uuid.uuid4().hex[:6]}")
    read_by_alice, before, by_bob = _ids(3), _ids(1), _ids(1)
    to_partner, to_other, sealed = _ids(2), _ids(1), _ids(2)
    for s in read_by_alice:
        await _read(identity, s, alice, ["email", "phone"], start + timedelta(days=1))
    await _read(identity, before[0], alice, ["email"], start - timedelta(seconds=1))
    await _read(identity, read_by_alice[0], alice, ["email"], end)  # the window's end: out
    await _read(identity, by_bob[0], bob, ["email"], start + timedelta(days=2))
    for s in sealed:  # a service that received the sealed box, not the value
        await _read(identity, s, loans, ["email_sealed"], start + timedelta(days=3))
    for s in to_partner:
        await _disclose(gateway, s, partner, start + timedelta(days=4))
    await _disclose(gateway, to_other[0], other, start + timedelta(days=4))
    await _index(runtimes)

    async def compute(kind: ScopeKind, value: str, taken: frozenset[str] = frozenset()) -> Any:
        return await blast.compute(
            rt,
            incident_id=uuid.uuid4(),
            scope=Scope(kind, value, start, end, taken),
            staff_id="officer-1",
            role="security-officer",
            feeds=_feeds(runtimes),
        )

    by_staff = await compute(ScopeKind.STAFF, alice.id)
    assert by_staff.radius.notifiable == set(read_by_alice)  # not before, not at the end
    assert by_staff.radius.subjects == set(read_by_alice)
    assert by_staff.radius.fields == {"email": 3, "phone": 3}
    assert [(c.source, c.ok) for c in by_staff.chains] == [("identity", True)]
    assert by_staff.chains[0].head is not None and by_staff.chains[0].head >= 7

    by_partner = await compute(ScopeKind.PARTNER, partner)
    assert by_partner.radius.notifiable == set(to_partner)
    assert [c.source for c in by_partner.chains] == ["sharing-gateway"]

    safe = await compute(ScopeKind.SERVICE, loans.id)
    assert safe.radius.subjects == set(sealed) and safe.radius.notifiable == set()
    taken = await compute(ScopeKind.SERVICE, loans.id, frozenset({sealed[0]}))
    assert taken.radius.notifiable == {sealed[0]}
    assert taken.radius.protection[sealed[1]] is Protection.SEALED_SAFE_KEY

    subject_scope = await compute(ScopeKind.SUBJECT, read_by_alice[0])
    assert subject_scope.radius.subjects == {read_by_alice[0]}

    # recorded: the row's list opens to the subjects, the event holds counts and the digest
    secret = await rt.secrets.get(LOOKUP_HMAC)
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                select(blast_radius_results).where(
                    blast_radius_results.c.computation_id == by_staff.computation_id
                )
            )
        ).one()
        records = (
            await conn.execute(
                select(event_log.c.record).where(
                    event_log.c.event_type == BlastRadiusComputed.event_type
                )
            )
        ).all()
    assert blast.open_subjects(secret, row.computation_id, row.sealed) == {
        s: "unsealed" for s in read_by_alice
    }
    assert row.subjects_digest == blast.subjects_digest(secret, read_by_alice)
    assert read_by_alice[0] not in row.sealed.decode(errors="replace")
    logged = b"".join(r.record for r in records).decode()
    for s in [*read_by_alice, *to_partner, *sealed]:
        assert s not in logged  # no subject on the log, not even a subject scope's value
    [recorded] = [
        json.loads(r.record)["payload"]
        for r in records
        if json.loads(r.record)["payload"]["computation_id"] == str(by_staff.computation_id)
    ]
    assert recorded["notifiable_subjects"] == 3 and recorded["verified_sources"]["identity"] > 0
    assert recorded["subjects_digest"] == row.subjects_digest


@pytest.mark.obligation("SEC-4", "SEC-5")
async def test_a_credential_scope_finds_exactly_the_subjects_that_credential_pulled(
    runtimes: dict[str, ServiceRuntime], rt: ServiceRuntime
) -> None:
    """The gateway records the credential a partner pulled with: a leaked credential's blast
    radius is its own pulls, not its partner's other credential's, nor pulls from before the
    gateway recorded it (a partner scope finds those)."""
    gateway = runtimes["sharing-gateway"]
    start = utcnow() - timedelta(days=3)
    partner = f"bureau-{uuid.uuid4().hex[:6]}"
    leaked, other = f"{partner}-leaked", f"{partner}-other"
    by_leaked, by_other, unnamed = _ids(3), _ids(2), _ids(1)
    for s in by_leaked:
        await _disclose(gateway, s, partner, start + timedelta(hours=1), client_id=leaked)
    for s in by_other:
        await _disclose(gateway, s, partner, start + timedelta(hours=2), client_id=other)
    await _disclose(gateway, unnamed[0], partner, start + timedelta(hours=3))
    await _index(runtimes)

    async def compute(kind: ScopeKind, value: str) -> Any:
        return await blast.compute(
            rt,
            incident_id=uuid.uuid4(),
            scope=Scope(kind, value, start, utcnow()),
            staff_id="officer-1",
            role="security-officer",
            feeds=_feeds(runtimes),
        )

    credential = await compute(ScopeKind.CREDENTIAL, leaked)
    assert credential.radius.subjects == set(by_leaked)
    assert credential.radius.notifiable == set(by_leaked)
    assert credential.radius.fields == {"email": 3, "phone": 3}
    assert [c.source for c in credential.chains] == ["sharing-gateway"]
    assert (await compute(ScopeKind.CREDENTIAL, other)).radius.subjects == set(by_other)
    everyone = {*by_leaked, *by_other, *unnamed}
    assert (await compute(ScopeKind.PARTNER, partner)).radius.subjects == everyone


async def test_a_tampered_source_chain_is_reported_not_hidden(
    runtimes: dict[str, ServiceRuntime], rt: ServiceRuntime
) -> None:
    class Tampered(LocalLogFeed):
        async def read(self, after_seq: int, limit: int) -> list[Any]:
            page = await super().read(after_seq, limit)
            return [
                r if r.seq != 1 else type(r)(**{**r.__dict__, "record": r.record + b" "})
                for r in page
            ]

    identity = runtimes["identity"]
    staff = Actor(kind=ActorKind.STAFF, id=f"eve-{uuid.uuid4().hex[:6]}")
    subject = str(uuid.uuid4())
    start = utcnow() - timedelta(days=1)
    await _read(identity, subject, staff, ["email"], start + timedelta(hours=1))
    await _index(runtimes)
    done = await blast.compute(
        rt,
        incident_id=uuid.uuid4(),
        scope=Scope(ScopeKind.STAFF, staff.id, start, utcnow()),
        staff_id="officer-1",
        role="security-officer",
        feeds={"identity": Tampered(identity.engine, "identity")},
    )
    assert done.radius.notifiable == {subject}  # the result still comes …
    [check] = done.chains
    assert check.problem == "chain broken at 1"  # … with the broken chain named


# --- over HTTP: only the response team --------------------------------------------------


@pytest.fixture
async def http(
    rt: ServiceRuntime, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, IssuedTokens]]:
    verifier = IssuedTokens()
    monkeypatch.setattr(rt, "token_verifier", verifier)
    app = create_app(service_definition)
    app.state.runtime = rt
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://incident") as client:
        yield client, verifier


def _staff(verifier: IssuedTokens, *roles: str, mfa: bool = True) -> dict[str, str]:
    return verifier.issue(
        Principal(
            kind=ActorKind.STAFF,
            id=f"staff-{uuid.uuid4().hex[:6]}",
            roles=frozenset(roles),
            mfa=mfa,
        )
    )


async def _reported(rt: ServiceRuntime) -> uuid.UUID:
    """An incident reported through the response workflow (a blast radius is one's)."""
    view = await response.report_incident(
        rt,
        summary="A staff account read customer records it had no case for",
        source=Source.STAFF,
        staff_id="officer-1",
        roles=frozenset({"security-officer"}),
    )
    return view.incident_id


def _body(
    kind: str,
    value: str,
    start: datetime,
    end: datetime,
    incident_id: uuid.UUID | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "incident_id": str(incident_id or uuid.uuid4()),
        "scope": {"kind": kind, "value": value},
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        **extra,
    }


async def _computed(rt: ServiceRuntime) -> int:
    async with rt.engine.connect() as conn:
        return int(
            (
                await conn.execute(select(func.count()).select_from(blast_radius_results))
            ).scalar_one()
        )


@pytest.mark.obligation("SEC-2", "SEC-5")
async def test_only_the_response_team_gets_a_blast_radius_and_others_learn_nothing(
    runtimes: dict[str, ServiceRuntime],
    rt: ServiceRuntime,
    http: tuple[httpx.AsyncClient, IssuedTokens],
) -> None:
    client, verifier = http
    identity = runtimes["identity"]
    staff = Actor(kind=ActorKind.STAFF, id=f"mallory-{uuid.uuid4().hex[:6]}")
    subject = str(uuid.uuid4())
    start = utcnow() - timedelta(days=1)
    await _read(identity, subject, staff, ["email"], start + timedelta(hours=1))
    await _index(runtimes)
    incident_id = await _reported(rt)
    body = _body("staff", staff.id, start, utcnow(), incident_id, include_subjects=True)
    before = await _computed(rt)
    refused = [
        await client.post("/v1/blast-radius", json=body, headers=headers)
        for headers in (
            verifier.issue(Principal(kind=ActorKind.USER, id=subject)),  # the subject itself
            _staff(verifier, "customer-service"),
            _staff(verifier, "administrator", "risk-analyst"),
            _staff(verifier, "security-officer", mfa=False),
            verifier.issue(Principal(kind=ActorKind.PARTNER, id="acme")),
        )
    ]
    assert [r.status_code for r in refused] == [403] * 5
    for r in refused:
        assert subject not in r.text and staff.id not in r.text  # learns nothing
    anonymous = await client.post("/v1/blast-radius", json=body)
    assert anonymous.status_code == 401 and subject not in anonymous.text
    assert await _computed(rt) == before  # nothing computed, nothing recorded
    async with rt.engine.connect() as conn:
        assert await rt.store.read_stream(conn, access_stream(subject)) == []

    # the response team: counts, and the list when asked, each subject a recorded read
    officer = _staff(verifier, "privacy-officer")
    counts = await client.post(
        "/v1/blast-radius", json={**body, "include_subjects": False}, headers=officer
    )
    assert counts.status_code == 200, counts.text
    assert counts.json()["notifiable_subjects"] == 1 and counts.json()["subject_list"] is None
    assert subject not in counts.text
    listed = await client.post("/v1/blast-radius", json=body, headers=officer)
    assert listed.status_code == 200
    assert listed.json()["subject_list"] == [{"subject_id": subject, "protection": "unsealed"}]
    async with rt.engine.connect() as conn:
        [read] = await rt.store.read_stream(conn, access_stream(subject))
    assert read.actor.kind is ActorKind.STAFF and read.actor.role == "privacy-officer"


@pytest.mark.parametrize(
    "change",
    [
        {"scope": {"kind": "planet", "value": "x"}},
        {"scope": {"kind": "staff", "value": ""}},
        {"window": {"start": "2026-11-08T00:00:00Z", "end": "2026-11-01T00:00:00Z"}},
        {"window": {"start": "2026-11-01T00:00:00", "end": "2026-11-08T00:00:00"}},
        {"incident_id": "not-a-uuid"},
        {"compromised_key_owners": ["bad/owner"]},
    ],
)
async def test_a_bad_scope_is_422(
    rt: ServiceRuntime, http: tuple[httpx.AsyncClient, IssuedTokens], change: dict[str, Any]
) -> None:
    client, verifier = http
    start = datetime.fromisoformat("2026-11-01T00:00:00+00:00")
    body = {**_body("staff", "alice", start, start + timedelta(days=7)), **change}
    before = await _computed(rt)
    response = await client.post(
        "/v1/blast-radius", json=body, headers=_staff(verifier, "security-officer")
    )
    assert response.status_code == 422, response.text
    assert await _computed(rt) == before


@pytest.mark.obligation("SEC-4", "SEC-5")
async def test_an_unknown_incident_is_404_and_nothing_is_computed_or_read(
    runtimes: dict[str, ServiceRuntime],
    rt: ServiceRuntime,
    http: tuple[httpx.AsyncClient, IssuedTokens],
) -> None:
    client, verifier = http
    staff = Actor(kind=ActorKind.STAFF, id=f"trudy-{uuid.uuid4().hex[:6]}")
    subject = str(uuid.uuid4())
    start = utcnow() - timedelta(days=1)
    await _read(runtimes["identity"], subject, staff, ["email"], start + timedelta(hours=1))
    await _index(runtimes)
    body = _body("staff", staff.id, start, utcnow(), include_subjects=True)  # no such incident
    before = await _computed(rt)
    answer = await client.post(
        "/v1/blast-radius", json=body, headers=_staff(verifier, "security-officer")
    )
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 404 and "incident" in answer.json()["detail"]
    assert subject not in answer.text
    assert await _computed(rt) == before  # nothing computed, nothing recorded
    async with rt.engine.connect() as conn:
        assert await rt.store.read_stream(conn, access_stream(subject)) == []  # no read


async def test_the_index_keeps_no_value(runtimes: dict[str, ServiceRuntime]) -> None:
    """An indexed disclosure keeps who, whom, which fields and when: no value disclosed."""
    at = datetime.fromisoformat("2026-10-01T00:00:00+00:00")
    await _disclose(runtimes["sharing-gateway"], str(uuid.uuid4()), "bureau-values", at)
    await _index(runtimes)
    async with runtimes["incident"].engine.connect() as conn:
        columns = {c.name for c in exposure_index.c}
        assert await conn.scalar(select(func.count()).select_from(exposure_index)) > 0
    assert "value" not in columns and "case_reference" not in columns
