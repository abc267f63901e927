"""Consent's retention worker on its database (ServiceDefinition.retention): decisions are
deleted a retention after they were made, long after their grant could be redeemed; a fresh
grant is still redeemed, an old one is refused as unknown and its id answers 404. Over a
long run the table stays bounded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, insert, select

from expensura_consent.app import service_definition
from expensura_consent.decisions import service as decisions
from expensura_consent.decisions import store
from expensura_consent.decisions.domain import Decision, ReleaseRefused
from expensura_consent.policy.service import INITIAL_VERSION, publish_initial_version
from expensura_consent.records.domain import ConsentChoice
from expensura_consent.settings import consent_settings
from expensura_consent.tables import decisions as decisions_table
from expensura_events.envelope import utcnow
from expensura_events.keystore import InMemoryKeyStore
from expensura_events.retention import Expiry, purge_expired
from expensura_events.runtime import ServiceRuntime
from expensura_events.vocabulary import PUBLIC_RECIPIENT, Purpose
from expensura_events.web.app import create_app
from expensura_ops.testing.stack import LocalStack

from .conftest import given, new_subject

TO_THE_PUBLIC = ConsentChoice(
    purpose=Purpose.COMMUNICATION,
    categories=frozenset({"pd:Contact"}),
    recipients=frozenset({PUBLIC_RECIPIENT}),
    policy_version=INITIAL_VERSION,
)


@pytest.fixture(scope="module")
async def provisioned(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    """The stack kept at hand: its provisioned service keys sign the callers' tokens."""
    stack = LocalStack(pg_admin_url, kafka_bootstrap, tmp_path_factory.mktemp("consent"))
    await stack.provision()
    try:
        yield stack
    finally:
        await stack.drop()


@pytest.fixture(scope="module")
async def rt(provisioned: LocalStack) -> AsyncIterator[ServiceRuntime]:
    runtime = ServiceRuntime(
        service_definition, provisioned.settings("consent"), keys=InMemoryKeyStore()
    )
    try:
        await publish_initial_version(runtime)
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
async def inside(rt: ServiceRuntime, provisioned: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    """Consent's routes in process on the test's runtime, called as the sharing gateway."""
    app = create_app(service_definition)
    app.state.runtime = rt  # what the lifespan would set (not run here)
    headers = provisioned.service_headers("consent", caller="sharing-gateway")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://consent", headers=headers
    ) as client:
        yield client


def _rules(rt: ServiceRuntime) -> list[Expiry]:
    assert service_definition.retention is not None  # the runtime starts its worker
    return list(service_definition.retention(rt.settings))


def _grant(subject: str) -> decisions.Question:
    return decisions.Question(
        subject_id=subject,
        purpose=Purpose.COMMUNICATION,
        categories=frozenset({"pd:Contact"}),
        recipient=PUBLIC_RECIPIENT,
        requester="sharing-gateway",
        fields=frozenset({"email"}),
    )


def _release(subject: str) -> decisions.ReleaseAsk:
    return decisions.ReleaseAsk(
        subject_id=subject,
        recipient=PUBLIC_RECIPIENT,
        categories=frozenset({"pd:Contact"}),
        fields=frozenset({"email"}),
    )


async def _recorded(rt: ServiceRuntime, subject: str, ago: timedelta) -> uuid.UUID:
    """A grant recorded as `decide_in` records it, `ago` before now."""
    recorded = store.RecordedDecision(
        decision_id=uuid.uuid4(),
        subject_id=subject,
        purpose=Purpose.COMMUNICATION,
        recipient=PUBLIC_RECIPIENT,
        decided_at=utcnow() - ago,
        decision=Decision(True, "consent"),
    )
    async with rt.engine.begin() as conn:
        await store.insert(conn, recorded, {"pd:Contact"}, "sharing-gateway", frozenset({"email"}))
    return recorded.decision_id


async def _kept(rt: ServiceRuntime, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(decisions_table.c.decision_id).where(decisions_table.c.decision_id.in_(ids))
        )
    return {r.decision_id for r in rows}


@pytest.mark.obligation("RGT-4")
async def test_old_decisions_are_purged_a_fresh_grant_is_still_redeemed_and_an_old_id_is_unknown(
    rt: ServiceRuntime, inside: httpx.AsyncClient
) -> None:
    subject = new_subject()
    await given(rt, subject, TO_THE_PUBLIC)
    [rule] = _rules(rt)
    keep = timedelta(seconds=consent_settings(rt).decision_retention_seconds)
    assert (rule.name, rule.column, rule.keep) == ("decisions", "decided_at", keep)
    old = [await _recorded(rt, subject, keep + timedelta(minutes=1)) for _ in range(5)]
    within = await _recorded(rt, subject, keep - timedelta(minutes=1))
    fresh = await decisions.make_decision(rt, _grant(subject))
    assert fresh.decision.allowed
    deleted = await purge_expired(rt.engine, [rule], batch=2)  # several batches
    assert deleted["decisions"] >= len(old)
    assert await _kept(rt, [*old, within, fresh.decision_id]) == {within, fresh.decision_id}
    # the fresh grant is redeemed as before; an old one is unknown, and refused
    redeemed = await decisions.redeem(rt, fresh.decision_id, _release(subject))
    assert redeemed.decision.allowed and redeemed.decision_id == fresh.decision_id
    with pytest.raises(ReleaseRefused, match="no such decision"):
        await decisions.redeem(rt, old[0], _release(subject))
    # a caller looking an old decision up gets 404, a kept one its decision
    gone = await inside.get(f"/internal/decisions/{old[0]}")
    assert gone.status_code == 404, gone.text
    assert gone.headers["content-type"].startswith("application/problem+json")
    found = await inside.get(f"/internal/decisions/{fresh.decision_id}")
    assert found.status_code == 200, found.text
    assert found.json()["basis"]["kind"] == "consent"
    assert (await inside.get(f"/internal/decisions/{within}")).status_code == 200


async def test_under_a_long_run_of_decisions_the_table_stays_bounded(rt: ServiceRuntime) -> None:
    """Two simulated days at 100 decisions an hour, the cleaner hourly: the table never
    holds more than a retention's worth plus one hour's, and levels off instead of growing
    with what was written."""
    rules = _rules(rt)
    keep_hours = int(rules[0].keep.total_seconds()) // 3600
    subject = new_subject()
    per_hour, hours = 100, 48
    start = utcnow() - timedelta(hours=hours)
    bound = per_hour * (keep_hours + 1)
    sizes: list[int] = []
    for hour in range(hours):
        at = start + timedelta(hours=hour)
        rows = [
            {
                "decision_id": uuid.uuid4(),
                "subject_id": subject,
                "purpose": Purpose.COMMUNICATION.value,
                "categories": ["pd:Contact"],
                "recipient": PUBLIC_RECIPIENT,
                "requester": "sharing-gateway",
                "allowed": True,
                "reason": "consent",
                "decided_at": at + timedelta(minutes=i * 60 // per_hour),
                "fields": ["email"],
            }
            for i in range(per_hour)
        ]
        async with rt.engine.begin() as conn:
            await conn.execute(insert(decisions_table), rows)  # as decide_in does, in bulk
        await purge_expired(rt.engine, rules, at + timedelta(minutes=59))
        async with rt.engine.connect() as conn:
            count = select(func.count()).where(decisions_table.c.subject_id == subject)
            sizes.append(int((await conn.execute(count)).scalar_one()))
    assert max(sizes) <= bound, sizes
    assert sizes[-1] == sizes[-2] == sizes[-10], sizes  # level, not growing
    assert per_hour * hours > 1.5 * bound  # far more were written than are kept
