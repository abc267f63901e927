"""The incident response workflow against incident's real database (SEC-4): an incident is
reported, triaged, contained, analysed, remediated and closed, each action an event on
`incident-<id>` with its actor and time and none with the team's free text; a move the state
does not allow changes nothing; two actions at once on one incident are taken one after the
other. Then the regulators' deadlines (SEC-5): an exposure summary attached shows the regimes
with their deadlines and the 75 % alert, the FTC draft from 500 consumers, a filed report
recorded once. Then the routes, over HTTP in process: only the response team, with MFA,
reaches them; bad input is 422 and an illegal move 409, both changing nothing. Tokens there
are checked by a stand-in verifier: what is under test is the routes' own gate."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from expensura_events.auth import Principal
from expensura_events.catalog.incident_response import (
    ContainmentNeedsOperator,
    ContainmentRequested,
    IncidentTriaged,
    containment_handoff_stream,
    incident_stream,
)
from expensura_events.envelope import Actor, EventEnvelope
from expensura_events.runtime import ServiceRuntime
from expensura_events.tables import event_log
from expensura_events.testing.tokens import IssuedTokens
from expensura_events.vocabulary import ActorKind
from expensura_events.web.app import create_app
from expensura_events.web.listeners import Listener, only_on
from expensura_incident.app import service_definition
from expensura_incident.grading.domain import (
    Circumstances,
    Confidentiality,
    DataCategory,
    DataSet,
    EaseOfIdentification,
    Severity,
    assess,
)
from expensura_incident.regimes.domain import Exposed, Exposure, NotReportable, Protection
from expensura_incident.response import service
from expensura_incident.response.domain import (
    Containment,
    IllegalTransition,
    IncidentIsClosed,
    IncidentState,
    InvalidAction,
    NoReportDue,
    NotOnResponseTeam,
    ReportAlreadyFiled,
    Source,
    VerisAction,
)
from expensura_incident.tables import incidents
from expensura_ops.testing.stack import LocalStack

pytestmark = pytest.mark.obligation("SEC-4")

SECURITY = frozenset({"security-officer"})
PRIVACY = frozenset({"privacy-officer"})
HIGH = assess(
    DataSet(DataCategory.FINANCIAL),
    EaseOfIdentification.MAXIMUM,
    Circumstances(Confidentiality.KNOWN_RECIPIENTS),
)
VERY_HIGH = assess(
    DataSet(DataCategory.FINANCIAL),
    EaseOfIdentification.MAXIMUM,
    Circumstances(Confidentiality.UNKNOWN_RECIPIENTS, malicious=True),
)
# Free text that names people: it must never reach the log.
SUMMARY = "Partner credential of Acme leaked; reported by Jane Roe"
ROOT_CAUSE = "John Doe pasted the client secret into a public gist"
REMEDY = "Secrets scanning on every repository; John Doe retrained"


@pytest.fixture(scope="module")
async def provisioned(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    stack = LocalStack(pg_admin_url, kafka_bootstrap, tmp_path_factory.mktemp("response"))
    await stack.provision()
    try:
        yield stack
    finally:
        await stack.drop()


@pytest.fixture
async def rt(provisioned: LocalStack) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime(service_definition, provisioned.settings("incident"))
    try:
        yield runtime
    finally:
        await runtime.close()


def officer() -> str:
    return f"staff-{uuid.uuid4().hex[:8]}"


async def reported(rt: ServiceRuntime, by: str | None = None) -> service.IncidentView:
    return await service.report_incident(
        rt, summary=SUMMARY, source=Source.STAFF, staff_id=by or officer(), roles=SECURITY
    )


async def contained(rt: ServiceRuntime) -> service.IncidentView:
    view = await reported(rt)
    who = officer()
    await service.triage(
        rt,
        view.incident_id,
        category=VerisAction.MISUSE,
        assessment=HIGH,
        staff_id=who,
        roles=SECURITY,
    )
    return await service.contain(
        rt,
        view.incident_id,
        measure=Containment.REVOKE_PARTNER_CREDENTIAL,
        target="cred-acme-1",
        staff_id=who,
        roles=SECURITY,
    )


async def events(rt: ServiceRuntime, incident_id: uuid.UUID) -> list[EventEnvelope]:
    async with rt.engine.connect() as conn:
        return await rt.store.read_stream(conn, incident_stream(incident_id))


async def records(rt: ServiceRuntime, incident_id: uuid.UUID) -> list[bytes]:
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(event_log.c.record).where(event_log.c.stream_id == incident_stream(incident_id))
        )
        return [bytes(r.record) for r in rows]


async def version(rt: ServiceRuntime, incident_id: uuid.UUID) -> int:
    async with rt.engine.connect() as conn:
        return (
            await conn.execute(
                select(incidents.c.version).where(incidents.c.incident_id == incident_id)
            )
        ).scalar_one()


# --- the workflow ----------------------------------------------------------------------------


async def test_an_incident_goes_from_report_to_closure_each_action_an_event_with_actor_and_time(
    rt: ServiceRuntime,
) -> None:
    reporter, security, privacy = officer(), officer(), officer()
    view = await reported(rt, reporter)
    iid = view.incident_id
    assert view.incident.state is IncidentState.REPORTED
    await service.triage(
        rt, iid, category=VerisAction.MISUSE, assessment=HIGH, staff_id=security, roles=SECURITY
    )
    await service.contain(
        rt,
        iid,
        measure=Containment.REVOKE_PARTNER_CREDENTIAL,
        target="cred-acme-1",
        staff_id=security,
        roles=SECURITY,
    )
    await service.contain(
        rt,
        iid,
        measure=Containment.ROTATE_KEY,
        target="key-gateway-signing",
        staff_id=security,
        roles=SECURITY,
    )
    await service.regrade(rt, iid, assessment=VERY_HIGH, staff_id=privacy, roles=PRIVACY)
    await service.analyse(rt, iid, root_cause=ROOT_CAUSE, staff_id=security, roles=SECURITY)
    await service.remediate(rt, iid, measure=REMEDY, staff_id=security, roles=SECURITY)
    view = await service.close(rt, iid, staff_id=privacy, roles=PRIVACY, note="done")

    incident = view.incident
    assert incident.state is IncidentState.CLOSED and not incident.open
    assert incident.severity is Severity.VERY_HIGH and VERY_HIGH.score == 4.0
    assert [c.owner for c in incident.containment] == ["sharing-gateway", "keystore"]
    assert incident.root_cause == ROOT_CAUSE and incident.remediation == (REMEDY,)
    kinds = [e.kind for e in view.timeline]
    assert kinds == [
        "report",
        "triage",
        "contain",
        "contain",
        "regrade",
        "analyse",
        "remediate",
        "close",
    ]
    assert [e.actor for e in view.timeline] == [
        reporter,
        security,
        security,
        security,
        privacy,
        security,
        security,
        privacy,
    ]
    assert [e.role for e in view.timeline][-1] == "privacy-officer"
    times = [e.at for e in view.timeline]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    assert incident.closed_at == times[-1]

    logged = await events(rt, iid)
    assert [e.event_type for e in logged] == [
        "incident.IncidentReported",
        "incident.IncidentTriaged",
        "incident.ContainmentRequested",
        "incident.ContainmentRequested",
        "incident.IncidentRegraded",
        "incident.IncidentAnalysed",
        "incident.IncidentRemediated",
        "incident.IncidentClosed",
    ]
    assert [e.stream_version for e in logged] == list(range(1, 9)) and view.version == 8
    assert [e.event_id for e in logged] == [e.event_id for e in view.timeline]
    assert [e.actor.id for e in logged] == [e.actor for e in view.timeline]
    assert all(e.actor.kind is ActorKind.STAFF and e.subject_id is None for e in logged)
    revoke = logged[2].payload
    assert isinstance(revoke, ContainmentRequested)
    assert (revoke.measure, revoke.target, revoke.owner) == (
        Containment.REVOKE_PARTNER_CREDENTIAL,
        "cred-acme-1",
        "sharing-gateway",
    )
    triaged = logged[1].payload
    assert isinstance(triaged, IncidentTriaged)
    assert (triaged.severity, triaged.score, triaged.category) == ("high", 3.25, "misuse")
    # The names in the summary, root cause and remediation stay out of the immutable log.
    for record in await records(rt, iid):
        for name in (b"Jane Roe", b"John Doe", b"Acme leaked", b"gist"):
            assert name not in record


async def test_a_key_rotation_no_service_carries_out_is_handed_to_an_operator_in_the_log(
    rt: ServiceRuntime,
) -> None:
    """The key store is an operator's tool, not a service: a rotate-key request is recorded
    with `incident.ContainmentNeedsOperator` (its own stream, caused by the request) so that
    the log says a person must act; a measure a service carries out gets no handoff."""
    view = await contained(rt)  # revoke-partner-credential: the gateway's
    who = officer()
    await service.contain(
        rt,
        view.incident_id,
        measure=Containment.ROTATE_KEY,
        target="kid-identity-token-1",
        staff_id=who,
        roles=SECURITY,
    )
    requests = [
        e
        for e in await events(rt, view.incident_id)
        if e.event_type.startswith("incident.Containment")
    ]
    assert [e.payload.measure for e in requests if isinstance(e.payload, ContainmentRequested)] == [
        Containment.REVOKE_PARTNER_CREDENTIAL,
        Containment.ROTATE_KEY,
    ]
    handoffs = {}
    for request in requests:
        async with rt.engine.connect() as conn:
            handoffs[request.payload.measure] = await rt.store.read_stream(
                conn, containment_handoff_stream(request.event_id)
            )
    assert handoffs[Containment.REVOKE_PARTNER_CREDENTIAL] == []
    [handoff] = handoffs[Containment.ROTATE_KEY]
    assert isinstance(handoff.payload, ContainmentNeedsOperator)
    assert (handoff.payload.incident_id, handoff.payload.target, handoff.payload.owner) == (
        view.incident_id,
        "kid-identity-token-1",
        "keystore",
    )
    assert handoff.causation_id == requests[1].event_id and handoff.actor.id == who
    # The incident's own stream still has one event per action.
    assert (await service.incident_view(rt, view.incident_id)).version == 4


async def test_a_key_rotation_identity_is_named_for_goes_to_identity_not_an_operator(
    rt: ServiceRuntime,
) -> None:
    """The team names identity for its access-token key: the request is identity's (its
    projection retires the key), with no operator handoff; an owner that cannot rotate keys
    is refused and nothing is recorded."""
    view = await contained(rt)
    who = officer()
    with pytest.raises(InvalidAction, match="keystore or identity"):
        await service.contain(
            rt,
            view.incident_id,
            measure=Containment.ROTATE_KEY,
            target="kid-1",
            owner="sharing-gateway",
            staff_id=who,
            roles=SECURITY,
        )
    after = await service.contain(
        rt,
        view.incident_id,
        measure=Containment.ROTATE_KEY,
        target="kid-1",
        owner="identity",
        staff_id=who,
        roles=SECURITY,
    )
    assert after.version == 4  # the refused request recorded nothing
    assert [c.owner for c in after.incident.containment] == ["sharing-gateway", "identity"]
    [request] = [
        e
        for e in await events(rt, view.incident_id)
        if isinstance(e.payload, ContainmentRequested)
        and e.payload.measure == Containment.ROTATE_KEY
    ]
    assert (request.payload.owner, request.payload.target) == ("identity", "kid-1")
    async with rt.engine.connect() as conn:
        handoff = await rt.store.read_stream(conn, containment_handoff_stream(request.event_id))
    assert handoff == []
    # Read back from the store, the action keeps its owner.
    stored = await service.incident_view(rt, view.incident_id)
    assert [c.owner for c in stored.incident.containment] == ["sharing-gateway", "identity"]


async def test_a_system_raises_an_incident_and_the_team_takes_it_on(rt: ServiceRuntime) -> None:
    raised = await service.raise_incident(
        rt,
        summary="expensura log verify: loans' chain broken at seq 1042",
        source=Source.LOG_VERIFY_FAILED,
        actor=Actor.system("system:log-verify"),
    )
    iid = raised.incident_id
    assert raised.incident.reported_by == "system:log-verify"
    view = await service.triage(
        rt, iid, category=VerisAction.HACKING, assessment=HIGH, staff_id=officer(), roles=SECURITY
    )
    assert view.incident.state is IncidentState.TRIAGED
    reported_event, triaged_event = await events(rt, iid)
    assert reported_event.actor.kind is ActorKind.SYSTEM
    assert reported_event.payload.source == Source.LOG_VERIFY_FAILED
    assert triaged_event.actor.kind is ActorKind.STAFF
    assert triaged_event.actor.role == "security-officer"


async def test_an_action_the_state_does_not_allow_changes_nothing(rt: ServiceRuntime) -> None:
    view = await reported(rt)
    iid = view.incident_id
    for act in (
        service.close(rt, iid, staff_id=officer(), roles=SECURITY),
        service.contain(
            rt,
            iid,
            measure=Containment.END_STAFF_SESSIONS,
            target="staff-x",
            staff_id=officer(),
            roles=SECURITY,
        ),
        service.analyse(rt, iid, root_cause="too early", staff_id=officer(), roles=SECURITY),
    ):
        with pytest.raises(IllegalTransition):
            await act
    after = await service.incident_view(rt, iid)
    assert after.incident.state is IncidentState.REPORTED and len(after.timeline) == 1
    assert await version(rt, iid) == 1 and len(await events(rt, iid)) == 1


async def test_only_the_response_team_acts_on_an_incident(rt: ServiceRuntime) -> None:
    with pytest.raises(NotOnResponseTeam):
        await service.report_incident(
            rt,
            summary="x",
            source=Source.STAFF,
            staff_id=officer(),
            roles=frozenset({"customer-service"}),
        )
    view = await reported(rt)
    with pytest.raises(NotOnResponseTeam):
        await service.triage(
            rt,
            view.incident_id,
            category=VerisAction.ERROR,
            assessment=HIGH,
            staff_id=officer(),
            roles=frozenset({"risk-analyst"}),
        )
    assert len(await events(rt, view.incident_id)) == 1


async def test_two_triages_at_once_one_applies_and_the_other_is_refused(
    rt: ServiceRuntime,
) -> None:
    view = await reported(rt)
    iid = view.incident_id

    async def triage(assessment: Any) -> Any:
        return await service.triage(
            rt,
            iid,
            category=VerisAction.HACKING,
            assessment=assessment,
            staff_id=officer(),
            roles=SECURITY,
        )

    outcomes = await asyncio.gather(triage(HIGH), triage(VERY_HIGH), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], IllegalTransition), outcomes
    logged = await events(rt, iid)
    assert [e.event_type for e in logged] == [
        "incident.IncidentReported",
        "incident.IncidentTriaged",
    ]
    after = await service.incident_view(rt, iid)
    assert after.version == 2 and [e.kind for e in after.timeline] == ["report", "triage"]


async def test_two_closures_at_once_close_the_incident_once(rt: ServiceRuntime) -> None:
    view = await contained(rt)
    iid = view.incident_id
    who = officer()
    await service.analyse(rt, iid, root_cause="x", staff_id=who, roles=SECURITY)
    await service.remediate(rt, iid, measure="y", staff_id=who, roles=SECURITY)
    outcomes = await asyncio.gather(
        *(service.close(rt, iid, staff_id=officer(), roles=PRIVACY) for _ in range(4)),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1, outcomes
    assert all(isinstance(o, IllegalTransition) for o in outcomes if isinstance(o, BaseException))
    logged = await events(rt, iid)
    assert [e.event_type for e in logged].count("incident.IncidentClosed") == 1


async def test_containments_at_once_are_all_recorded_one_after_the_other(
    rt: ServiceRuntime,
) -> None:
    view = await contained(rt)
    iid = view.incident_id
    targets = [f"staff-{i}" for i in range(5)]
    await asyncio.gather(
        *(
            service.contain(
                rt,
                iid,
                measure=Containment.END_STAFF_SESSIONS,
                target=t,
                staff_id=officer(),
                roles=SECURITY,
            )
            for t in targets
        )
    )
    after = await service.incident_view(rt, iid)
    assert sorted(c.target for c in after.incident.containment[1:]) == targets
    assert [e.seq for e in after.timeline] == list(range(1, 9)) and after.version == 8
    assert [e.stream_version for e in await events(rt, iid)] == list(range(1, 9))


# --- regulators' deadlines (SEC-5) -------------------------------------------------------------


def exposure(texas: int, *, protection: Protection = Protection.UNSEALED) -> Exposure:
    return Exposure(
        groups=(
            Exposed("US-TX", protection, texas),
            Exposed("US-CA", Protection.SEALED_SAFE_KEY, 900),
        ),
        information_types=("contact", "credit"),
    )


@pytest.mark.obligation("SEC-5")
async def test_an_exposure_summary_shows_each_regime_with_its_deadline_and_the_75_percent_alert(
    rt: ServiceRuntime,
) -> None:
    view = await contained(rt)
    iid, found = view.incident_id, view.incident.reported_at
    assert view.deadlines == ()
    attached = await service.attach_exposure(
        rt, iid, exposure(500), staff_id=officer(), roles=PRIVACY
    )
    by_code = {d.regime.code: d for d in attached.deadlines}
    # California's 900 were sealed under a safe key: no notification event there.
    assert set(by_code) == {"ftc-safeguards", "us-tx"}
    assert by_code["ftc-safeguards"].due_by == found + timedelta(days=30)
    assert by_code["ftc-safeguards"].subjects == 500 and by_code["us-tx"].report_due
    assert not any(d.alert for d in attached.deadlines)

    day_22 = await service.incident_view(rt, iid, now=found + timedelta(days=22))
    assert not any(d.alert for d in day_22.deadlines)
    day_23 = await service.incident_view(rt, iid, now=found + timedelta(days=23))
    assert {d.regime.code for d in day_23.deadlines if d.alert} == {"ftc-safeguards", "us-tx"}
    listed = await service.open_incidents(rt, now=found + timedelta(days=23))
    assert next(i for i in listed if i.incident_id == iid).alert

    logged = await events(rt, iid)
    summary = logged[-1].payload
    assert logged[-1].event_type == "incident.ExposureSummaryAttached"
    assert summary.subjects == 1400 and summary.notifiable_subjects == 500
    assert summary.reports_due == ["ftc-safeguards", "us-tx"]
    assert attached.timeline[-1].kind == "attach-exposure"


@pytest.mark.obligation("SEC-5")
async def test_the_ftc_draft_needs_500_consumers_and_is_due_30_days_after_discovery(
    rt: ServiceRuntime,
) -> None:
    view = await contained(rt)
    iid = view.incident_id
    with pytest.raises(service.NoExposure):
        await service.ftc_draft(rt, iid)
    await service.attach_exposure(rt, iid, exposure(499), staff_id=officer(), roles=PRIVACY)
    with pytest.raises(NotReportable):
        await service.ftc_draft(rt, iid)
    with pytest.raises(NoReportDue):
        await service.file_report(
            rt, iid, regime="ftc-safeguards", reference=None, staff_id=officer(), roles=PRIVACY
        )
    # A key taken too: the sealed values count, and the summary replaces the earlier one.
    await service.attach_exposure(
        rt,
        iid,
        exposure(500, protection=Protection.SEALED_KEY_TAKEN),
        staff_id=officer(),
        roles=PRIVACY,
    )
    draft = await service.ftc_draft(rt, iid)
    assert draft.consumers == 500 and draft.information_types == ("contact", "credit")
    assert draft.due_by == view.incident.reported_at + timedelta(days=30)
    assert "misuse" in draft.description and "Jane" not in draft.description


@pytest.mark.obligation("SEC-5")
async def test_a_filed_report_is_recorded_once_and_stops_its_alert(rt: ServiceRuntime) -> None:
    view = await contained(rt)
    iid, found = view.incident_id, view.incident.reported_at
    await service.attach_exposure(rt, iid, exposure(600), staff_id=officer(), roles=PRIVACY)
    who = officer()
    filed = await service.file_report(
        rt, iid, regime="ftc-safeguards", reference="FTC-2026-0042", staff_id=who, roles=PRIVACY
    )
    assert [(r.regime, r.filed_by, r.reference) for r in filed.reports] == [
        ("ftc-safeguards", who, "FTC-2026-0042")
    ]
    with pytest.raises(ReportAlreadyFiled):
        await service.file_report(
            rt, iid, regime="ftc-safeguards", reference=None, staff_id=who, roles=PRIVACY
        )
    with pytest.raises(NoReportDue):
        await service.file_report(
            rt, iid, regime="gdpr", reference=None, staff_id=who, roles=PRIVACY
        )
    late = await service.incident_view(rt, iid, now=found + timedelta(days=29))
    alerts = {d.regime.code: d.alert for d in late.deadlines}
    assert alerts == {"ftc-safeguards": False, "us-tx": True}
    logged = await events(rt, iid)
    assert [e.event_type for e in logged][-1] == "incident.RegulatorReportFiled"
    assert logged[-1].purpose.value == "legal-compliance"
    assert logged[-1].legal_basis is not None and "314.4(j)" in str(logged[-1].legal_basis)


@pytest.mark.obligation("SEC-5")
async def test_a_closed_incident_takes_no_new_exposure_summary(rt: ServiceRuntime) -> None:
    view = await contained(rt)
    iid = view.incident_id
    who = officer()
    await service.analyse(rt, iid, root_cause="x", staff_id=who, roles=SECURITY)
    await service.remediate(rt, iid, measure="y", staff_id=who, roles=SECURITY)
    await service.close(rt, iid, staff_id=who, roles=SECURITY)
    with pytest.raises(IncidentIsClosed):
        await service.attach_exposure(rt, iid, exposure(10), staff_id=who, roles=PRIVACY)
    assert await version(rt, iid) == 6


# --- over HTTP ---------------------------------------------------------------------------------


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


def staff(verifier: IssuedTokens, *roles: str, mfa: bool = True) -> dict[str, str]:
    return verifier.issue(
        Principal(kind=ActorKind.STAFF, id=officer(), roles=frozenset(roles), mfa=mfa)
    )


TRIAGE = {
    "category": "hacking",
    "assessment": {
        "data": [{"category": "financial", "adjustment": "fraud-or-full-profile"}],
        "identification": "maximum",
        "confidentiality": "unknown-recipients",
        "malicious": True,
    },
}


@pytest.mark.obligation("SEC-2")
async def test_only_the_response_team_with_mfa_reaches_the_incident_routes(
    rt: ServiceRuntime, http: tuple[httpx.AsyncClient, IssuedTokens]
) -> None:
    client, verifier = http
    view = await reported(rt)
    paths = ["/v1/incidents", f"/v1/incidents/{view.incident_id}"]
    refused = [
        staff(verifier, "customer-service"),
        staff(verifier, "risk-analyst", "administrator"),
        staff(verifier, "security-officer", mfa=False),
        verifier.issue(Principal(kind=ActorKind.USER, id=str(uuid.uuid4()))),
    ]
    for headers in refused:
        for path in paths:
            resp = await client.get(path, headers=headers)
            assert resp.status_code == 403, (path, resp.text)
        resp = await client.post(
            f"/v1/incidents/{view.incident_id}/triage", json=TRIAGE, headers=headers
        )
        assert resp.status_code == 403
        assert resp.headers["content-type"] == "application/problem+json"
    assert (await client.get(paths[0])).status_code == 401
    for role in ("security-officer", "privacy-officer"):
        resp = await client.get(paths[1], headers=staff(verifier, role))
        assert resp.status_code == 200, resp.text
    assert len(await events(rt, view.incident_id)) == 1


async def test_the_workflow_over_http_with_bad_input_and_illegal_moves_refused(
    rt: ServiceRuntime, http: tuple[httpx.AsyncClient, IssuedTokens]
) -> None:
    client, verifier = http
    security, privacy = staff(verifier, "security-officer"), staff(verifier, "privacy-officer")
    resp = await client.post(
        "/v1/incidents", json={"summary": SUMMARY, "source": "staff"}, headers=security
    )
    assert resp.status_code == 201, resp.text
    iid = resp.json()["incident_id"]
    base = f"/v1/incidents/{iid}"

    for path, body in (
        ("/triage", {**TRIAGE, "category": "alien"}),
        ("/triage", {"category": "hacking", "assessment": {**TRIAGE["assessment"], "data": []}}),
        # An adjustment of another category than its data set's.
        (
            "/triage",
            {
                "category": "hacking",
                "assessment": {
                    "data": [{"category": "simple", "adjustment": "fraud-or-full-profile"}],
                    "identification": "maximum",
                },
            },
        ),
        ("/containment", {"measure": "revoke-partner-credential", "target": ""}),
        ("/analysis", {"root_cause": "   "}),
    ):
        resp = await client.post(base + path, json=body, headers=security)
        assert resp.status_code == 422, (path, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
    resp = await client.post(base + "/closure", json={}, headers=security)
    assert resp.status_code == 409 and resp.headers["content-type"] == "application/problem+json"
    assert len(await events(rt, uuid.UUID(iid))) == 1
    assert (
        await client.get("/v1/incidents/" + str(uuid.uuid4()), headers=security)
    ).status_code == 404

    resp = await client.post(base + "/triage", json=TRIAGE, headers=security)
    assert resp.status_code == 200, resp.text
    assert resp.json()["severity"] == "very-high" and resp.json()["score"] == 5.0
    steps: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("/containment", {"measure": "revoke-partner-credential", "target": "cred-9"}, security),
        ("/regrade", {"assessment": {**TRIAGE["assessment"], "malicious": False}}, privacy),
        (
            "/exposure",
            {
                "groups": [
                    {"residence": "US-TX", "protection": "unsealed", "subjects": 600},
                    {"residence": "DE", "protection": "sealed-key-taken", "subjects": 3},
                ],
                "information_types": ["contact"],
            },
            privacy,
        ),
        ("/analysis", {"root_cause": ROOT_CAUSE}, security),
        ("/remediation", {"measure": REMEDY}, security),
        ("/closure", {"note": "reviewed"}, privacy),
    ]
    for path, body, headers in steps:
        resp = await client.post(base + path, json=body, headers=headers)
        assert resp.status_code == 200, (path, resp.text)
    shown = (await client.get(base, headers=privacy)).json()
    assert shown["state"] == "closed" and shown["severity"] == "very-high"
    assert [e["kind"] for e in shown["timeline"]] == [
        "report",
        "triage",
        "contain",
        "regrade",
        "attach-exposure",
        "analyse",
        "remediate",
        "close",
    ]
    assert all(e["actor"] and e["at"] for e in shown["timeline"])
    regimes = {r["code"]: r for r in shown["regimes"]}
    assert set(regimes) == {"ftc-safeguards", "us-tx", "gdpr"}
    assert regimes["gdpr"]["subjects"] == 3 and regimes["gdpr"]["due_by"] is not None
    assert shown["containment"][0]["owner"] == "sharing-gateway"

    draft = await client.get(base + "/ftc-report", headers=privacy)
    assert draft.status_code == 200, draft.text
    assert draft.json()["consumers"] == 603
    bad = await client.post(base + "/regulator-reports", json={"regime": "mars"}, headers=privacy)
    assert bad.status_code == 422
    filed = await client.post(
        base + "/regulator-reports", json={"regime": "gdpr", "reference": "DPA-7"}, headers=privacy
    )
    assert filed.status_code == 201, filed.text
    assert filed.json()["reports"][0]["regime"] == "gdpr"
    again = await client.post(base + "/regulator-reports", json={"regime": "gdpr"}, headers=privacy)
    assert again.status_code == 409
    listed = (await client.get("/v1/incidents", headers=security)).json()["incidents"]
    assert iid not in {i["incident_id"] for i in listed}


# --- metrics ---------------------------------------------------------------------------------


async def open_incidents_exported(rt: ServiceRuntime) -> dict[str, float]:
    """`expensura_incidents_open` per severity, scraped from incident's internal listener."""
    app = create_app(service_definition)
    app.state.runtime = rt  # what the lifespan would set (not run here)
    transport = httpx.ASGITransport(app=only_on(Listener.INTERNAL, app))
    async with httpx.AsyncClient(transport=transport, base_url="http://incident") as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert SUMMARY not in answer.text and "Jane Roe" not in answer.text
    return {
        s.labels["severity"]: s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
        if s.name == "expensura_incidents_open"
    }


async def test_open_incidents_are_exported_per_severity(rt: ServiceRuntime) -> None:
    before = await open_incidents_exported(rt)
    assert set(before) == {*(s.value for s in Severity), "ungraded"}  # every one, 0 or more
    fresh = await reported(rt)
    graded = await contained(rt)  # triaged HIGH
    during = await open_incidents_exported(rt)
    high = graded.incident.severity
    assert high is not None
    assert during["ungraded"] == before["ungraded"] + 1
    assert during[high.value] == before[high.value] + 1
    assert fresh.incident.severity is None
