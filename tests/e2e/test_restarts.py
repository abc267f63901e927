"""Restarts of what the services depend on, end to end: the broker with the whole stack, and
PostgreSQL under load."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from expensura_events.topology import events_topic
from expensura_ops.devstack.broker import TansuBroker
from expensura_ops.devstack.paths import var_dir
from expensura_ops.devstack.postgres import EmbeddedPostgres
from expensura_ops.testing import tokens
from expensura_ops.testing.stack import LocalStack, eventually, free_port, topic_messages

PASSWORD = "correct horse battery staple"


def sign_up(url: str) -> str:
    return tokens.sign_up(url)


async def known_to_consent(stack: LocalStack, subjects: list[str]) -> dict[str, int] | None:
    """identity events consent applied per subject, once every subject is known to it."""
    out = {}
    async with httpx.AsyncClient(auth=stack.operator) as client:
        for s in subjects:
            resp = await client.get(
                f"{stack.processes['consent'].internal_url}/internal/known-subjects/{s}"
            )
            if resp.status_code != 200:
                return None
            out[s] = resp.json()["identity_events"]
    return out


async def logged_event_ids(url: str, operator: httpx.Auth) -> set[str]:
    async with httpx.AsyncClient(auth=operator) as client:
        page = (await client.get(f"{url}/internal/log", params={"limit": 5000})).json()
    return {e["event_id"] for e in page["events"]}


async def test_after_the_stack_and_its_broker_restart_the_whole_log_is_republished(
    isolated_stack: LocalStack, own_broker: TansuBroker
) -> None:
    stack = isolated_stack
    stack.start("identity")
    stack.start("consent")
    before = [sign_up(stack.processes["identity"].url) for _ in range(8)]
    await eventually(lambda: known_to_consent(stack, before), what="consent projected them")

    # `make run` stopped and started again: services down, an empty in-memory broker, then
    # provisioning recreates the topics before the services start
    stack.stop_all()
    own_broker.restart()
    await stack.provision()
    topic = events_topic("identity", stack.namespace)
    assert await topic_messages(own_broker.bootstrap_servers, topic) == []
    stack.start_agency()
    stack.start("identity")
    stack.start("consent")
    idp, inside = stack.processes["identity"].url, stack.processes["identity"].internal_url
    logged = await logged_event_ids(inside, stack.operator)

    async def republished() -> bool:
        messages = await topic_messages(own_broker.bootstrap_servers, topic)
        return {h["event_id"].decode() for _, _, h in messages} == logged

    await eventually(republished, timeout=60, what="every logged event on the topic again")
    relay = httpx.get(f"{inside}/internal/workers", auth=stack.operator).json()["relay"]
    assert relay["republished_from_start"] >= 1

    after = [sign_up(idp) for _ in range(3)]
    seen = await eventually(
        lambda: known_to_consent(stack, before + after), timeout=60, what="consent converged"
    )
    # the republished copies applied once
    assert seen == dict.fromkeys(before + after, tokens.SIGN_UP_EVENTS)


@pytest.fixture
async def own_postgres() -> AsyncIterator[EmbeddedPostgres]:
    """A PostgreSQL server of the test's own, which it may stop and start."""
    where = var_dir() / "tmp" / f"pg-restart-{uuid.uuid4().hex[:8]}"
    server = EmbeddedPostgres(where / "data", port=free_port(), settings={"fsync": "on"})
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(where, ignore_errors=True)


async def test_a_database_restart_under_load_answers_202_or_503_and_loses_nothing(
    own_postgres: EmbeddedPostgres, kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = LocalStack(own_postgres.url, kafka_bootstrap, tmp_path / "stack")
    await stack.provision()
    try:
        stack.start("identity")
        idp, inside = stack.processes["identity"].url, stack.processes["identity"].internal_url
        answers: list[tuple[int, str | None, str | None]] = []
        stop = asyncio.Event()

        async def load() -> None:
            async with httpx.AsyncClient(timeout=30) as client:
                while not stop.is_set():
                    email = f"load-{uuid.uuid4().hex}@example.com"
                    resp = await client.post(
                        f"{idp}/v1/accounts", json={"email": email, "password": PASSWORD}
                    )
                    # a 202 names no account: its e-mail is what signs in to it afterwards
                    created = email if resp.status_code == 202 else None
                    answers.append((resp.status_code, created, resp.headers.get("retry-after")))
                    if resp.status_code == 503:
                        await asyncio.sleep(0.05)

        workers = [asyncio.create_task(load()) for _ in range(3)]
        try:
            await asyncio.sleep(1.5)
            await asyncio.to_thread(own_postgres.stop, "immediate")  # as a crash
            down_at = len(answers)
            await asyncio.sleep(1.5)
            # starting up: recovery, "the database system is starting up" (57P03)
            await asyncio.to_thread(own_postgres.start)
            up_at = len(answers)

            async def created_again() -> bool:
                return any(a[0] == 202 for a in answers[up_at:])

            await eventually(created_again, timeout=60, what="sign-ups succeeding again")
            await asyncio.sleep(1.0)
        finally:
            stop.set()
            await asyncio.gather(*workers)

        statuses = {status for status, _, _ in answers}
        assert statuses <= {202, 503}, [a for a in answers if a[0] not in (202, 503)]
        assert any(a[0] == 503 for a in answers[down_at:]), "the outage was not observed"
        assert all(a[2] is not None for a in answers if a[0] == 503)  # Retry-After
        acknowledged = {
            await asyncio.to_thread(tokens.signed_in_subject, idp, created)
            for status, created, _ in answers
            if status == 202 and created is not None
        }

        owner = create_async_engine(stack.database_url("identity", admin=True))
        try:
            async with owner.connect() as conn:
                opened = set(
                    (
                        await conn.execute(
                            text(
                                "SELECT subject_id FROM event_log"
                                " WHERE event_type = 'identity.AccountOpened'"
                            )
                        )
                    ).scalars()
                )
        finally:
            await owner.dispose()
        assert acknowledged <= opened  # every acknowledged sign-up survived
        assert stack.cli("log", "verify", "identity").returncode == 0

        async def relay_caught_up() -> bool:  # it took its lock again on a new session
            async with httpx.AsyncClient(auth=stack.operator) as client:
                head = (await client.get(f"{inside}/internal/log?limit=1")).json()["head"]
                relay = (await client.get(f"{inside}/internal/workers")).json()["relay"]
            return bool(relay["last_seq"] == head)

        await eventually(relay_caught_up, what="the relay publishing again")
        stack.processes["identity"].stop()
        assert "shutdown failed" not in stack.processes["identity"].log()
    finally:
        stack.stop_all()
        await stack.drop()
