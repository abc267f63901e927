"""A read model lost and rebuilt through `expensura projections rebuild`, from another
service's log read over HTTP, with the services running as processes."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from expensura_consent.subjects.projection import known_subjects
from expensura_ops.testing import tokens
from expensura_ops.testing.stack import LocalStack, eventually


async def test_rebuild_through_the_cli_replays_another_services_log_over_http(
    fresh_stack: LocalStack,
) -> None:
    fresh_stack.start("identity")
    fresh_stack.start("consent")
    idp_url = fresh_stack.processes["identity"].url

    ids = [
        tokens.sign_up(idp_url, f"rebuild-{i}-{uuid.uuid4().hex[:6]}@example.com") for i in range(6)
    ]
    async with httpx.AsyncClient(auth=fresh_stack.operator) as client:
        consent_url = fresh_stack.processes["consent"].internal_url

        async def projected() -> bool:
            return (await client.get(f"{consent_url}/internal/known-subjects/count")).json()[
                "subjects"
            ] == 6

        await eventually(projected, what="projection")
        # lose the read model, then rebuild it from identity's log feed
        owner = create_async_engine(fresh_stack.database_url("consent", admin=True))
        async with owner.begin() as conn:
            await conn.execute(known_subjects.delete())
        await owner.dispose()
        assert (await client.get(f"{consent_url}/internal/known-subjects/count")).json()[
            "subjects"
        ] == 0
        out = fresh_stack.cli("projections", "rebuild", "known-subjects", service_name="consent")
        assert f"{6 * tokens.SIGN_UP_EVENTS} events applied" in out.stdout
        assert (await client.get(f"{consent_url}/internal/known-subjects/count")).json()[
            "subjects"
        ] == 6
        for s in ids:
            row = (await client.get(f"{consent_url}/internal/known-subjects/{s}")).json()
            assert row["identity_events"] == tokens.SIGN_UP_EVENTS
