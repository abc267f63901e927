"""The key store as an attacker holding one service's database role, or the owner's, would
try it: keys are created and destroyed, never changed, never written back (real PostgreSQL,
provisioned as `make run` does). And the master key rotates while services keep working."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from expensura_events.cipher import (
    LOOKUP_HMAC,
    PSEUDONYM,
    FieldCipher,
    MasterKey,
    MasterKeys,
    SubjectErased,
    UnknownMasterKey,
)
from expensura_events.db import engine_for, new_engine, with_database
from expensura_events.db_errors import sqlstate
from expensura_events.envelope import REDACTED
from expensura_events.keystore import PostgresKeyStore, ServiceSecrets, rotate_master
from expensura_events.tables import service_secrets, subject_keys
from expensura_events.topology import KEYSTORE_DATABASE, SERVICES
from expensura_ops.testing.stack import LocalStack

pytestmark = pytest.mark.obligation("RGT-3")
REFUSED = "42501"  # insufficient_privilege: a missing grant, or the guard trigger


@pytest.fixture(scope="module")
async def stack(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalStack]:
    s = LocalStack(pg_admin_url, kafka_bootstrap, Path(tmp_path_factory.mktemp("keys")))
    await s.provision()
    try:
        yield s
    finally:
        await s.drop()


@pytest.fixture
async def engines(stack: LocalStack) -> AsyncIterator[dict[str, AsyncEngine]]:
    """The key store as identity's role (the erasure path), loans' role, and its owner."""
    out = {
        name: engine_for(stack.settings(name).keystore_url, pool_size=2)
        for name in ("identity", "loans")
    } | {"owner": new_engine(with_database(stack.admin_url, stack.namespace + KEYSTORE_DATABASE))}
    try:
        yield out
    finally:
        for engine in out.values():
            await engine.dispose()


def master(stack: LocalStack) -> MasterKey:
    return MasterKey.from_base64(stack.master_key)


def subject() -> str:
    return f"subject-{uuid.uuid4()}"


async def refused(engine: AsyncEngine, sql: str, **params: Any) -> str | None:
    """Run `sql` in its own transaction; the SQLSTATE it failed with (None: it succeeded)."""
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql), params)
    except DBAPIError as exc:
        return sqlstate(exc)
    return None


async def row(engine: AsyncEngine, s: str) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(select(subject_keys).where(subject_keys.c.subject_id == s))
        ).one_or_none()


async def test_no_service_role_can_change_or_delete_a_key(
    stack: LocalStack, engines: dict[str, AsyncEngine]
) -> None:
    s = subject()
    key = await PostgresKeyStore(engines["loans"], master(stack)).get_or_create(s)
    forged = master(stack).wrap(s, os.urandom(32))
    for role in ("identity", "loans"):
        assert (
            await refused(
                engines[role],
                "UPDATE subject_keys SET wrapped_key = :w WHERE subject_id = :s",
                w=forged,
                s=s,
            )
            == REFUSED
        )
        assert (
            await refused(engines[role], "DELETE FROM subject_keys WHERE subject_id = :s", s=s)
            == REFUSED
        )
        assert await refused(engines[role], "TRUNCATE subject_keys") == REFUSED
    assert await PostgresKeyStore(engines["loans"], master(stack)).get(s) == key  # unchanged


async def test_grants_every_service_select_and_insert_and_only_identity_destroy(
    engines: dict[str, AsyncEngine],
) -> None:
    """The grants themselves (the trigger refuses the same writes even if one slipped)."""
    async with engines["owner"].connect() as conn:
        for spec in SERVICES:
            role = spec.db_role
            for table in ("subject_keys", "service_secrets"):
                privileges = {
                    p: await conn.scalar(
                        text("SELECT has_table_privilege(:r, :t, :p)"),
                        {"r": role, "t": table, "p": p},
                    )
                    for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
                }
                assert privileges == {
                    "SELECT": True,
                    "INSERT": True,
                    "UPDATE": False,
                    "DELETE": False,
                    "TRUNCATE": False,
                }, (role, table)
            for fn, expected in (
                ("destroy_subject_key(text)", spec.name.value == "identity"),
                ("rewrap_subject_key(text, text, bytea, text, bytea)", False),
                ("rewrap_service_secret(text, text, text, bytea, text, bytea)", False),
            ):
                assert (
                    await conn.scalar(
                        text("SELECT has_function_privilege(:r, :f, 'EXECUTE')"),
                        {"r": role, "f": fn},
                    )
                    is expected
                ), (role, fn)


async def test_only_the_erasure_path_can_destroy_a_key(
    stack: LocalStack, engines: dict[str, AsyncEngine]
) -> None:
    s = subject()
    loans = PostgresKeyStore(engines["loans"], master(stack))
    key = await loans.get_or_create(s)
    with pytest.raises(DBAPIError) as denied:
        await loans.destroy(s)  # loans is not the erasure path: no EXECUTE on the function
    assert sqlstate(denied.value) == REFUSED
    # nor can it erase someone by planting a tombstone for a subject with no key yet
    assert (
        await refused(
            engines["loans"],
            "INSERT INTO subject_keys (subject_id, key_id, kek_id, wrapped_key, created_at,"
            " destroyed_at) VALUES (:s, :k, 'x', NULL, now(), now())",
            s=subject(),
            k=uuid.uuid4(),
        )
        == REFUSED
    )
    assert await loans.get(s) == key
    assert await PostgresKeyStore(engines["identity"], master(stack)).destroy(s) is True
    assert await loans.get(s) is None


async def test_a_copied_key_cannot_be_written_back_after_erasure(
    stack: LocalStack, engines: dict[str, AsyncEngine]
) -> None:
    s = subject()
    identity = PostgresKeyStore(engines["identity"], master(stack))
    await identity.get_or_create(s)
    copy = await row(engines["owner"], s)  # a backup, or a dump the attacker kept
    assert await identity.destroy(s) is True

    # a service role re-inserting the copied row: the tombstone holds the subject's place
    assert (
        await refused(
            engines["loans"],
            "INSERT INTO subject_keys (subject_id, key_id, kek_id, wrapped_key, created_at)"
            " VALUES (:s, :k, :kek, :w, now())",
            s=s,
            k=copy.key_id,
            kek=copy.kek_id,
            w=copy.wrapped_key,
        )
        is not None
    )
    # the owner itself writing it back, or deleting the tombstone to re-insert: refused
    assert (
        await refused(
            engines["owner"],
            "UPDATE subject_keys SET wrapped_key = :w, destroyed_at = NULL WHERE subject_id = :s",
            w=copy.wrapped_key,
            s=s,
        )
        == REFUSED
    )
    assert (
        await refused(engines["owner"], "DELETE FROM subject_keys WHERE subject_id = :s", s=s)
        == REFUSED
    )
    assert (
        await refused(
            engines["owner"],
            "SELECT rewrap_subject_key(:s, 'destroyed', NULL, :kek, :w)",
            s=s,
            kek=copy.kek_id,
            w=copy.wrapped_key,
        )
        is None
    )  # runs, but moves nothing: there is no live key to move
    # and destroying again never brings anything back
    assert await identity.destroy(s) is False
    tomb = await row(engines["owner"], s)
    assert tomb.wrapped_key is None and tomb.destroyed_at is not None
    with pytest.raises(SubjectErased):
        await identity.get_or_create(s)


async def test_a_service_reads_and_creates_only_its_own_secrets(
    stack: LocalStack, engines: dict[str, AsyncEngine]
) -> None:
    identity_secret = await ServiceSecrets(engines["identity"], master(stack)).get(LOOKUP_HMAC)
    loans_secret = await ServiceSecrets(engines["loans"], master(stack)).get(LOOKUP_HMAC)
    assert loans_secret != identity_secret and len(identity_secret) == 32
    # stable: another process of the same service gets the same secret
    assert await ServiceSecrets(engines["identity"], master(stack)).get(LOOKUP_HMAC) == (
        identity_secret
    )
    identity_role = make_url(stack.settings("identity").keystore_url).username
    async with engines["loans"].connect() as conn:
        owners = set((await conn.execute(select(service_secrets.c.owner))).scalars())
    assert owners and identity_role not in owners  # row-level security: its own rows only
    planted = master(stack).wrap("x", os.urandom(32))
    assert (
        await refused(  # nor can it plant a secret for another service
            engines["loans"],
            "INSERT INTO service_secrets (owner, label, kek_id, wrapped, created_at)"
            " VALUES (:o, 'pseudonym', 'k', :w, now())",
            o=identity_role,
            w=planted,
        )
        == REFUSED
    )
    for sql in (
        "UPDATE service_secrets SET wrapped = :w",
        "DELETE FROM service_secrets WHERE owner <> :w",
    ):
        value = planted if "UPDATE" in sql else "nobody"
        assert await refused(engines["identity"], sql, w=value) == REFUSED
        assert await refused(engines["owner"], sql, w=value) == REFUSED  # the trigger
    assert (
        await refused(
            engines["identity"],
            "SELECT rewrap_service_secret(:o, 'lookup-hmac', 'a', :w, 'b', :w)",
            o=identity_role,
            w=planted,
        )
        == REFUSED
    )
    assert await ServiceSecrets(engines["identity"], master(stack)).get(LOOKUP_HMAC) == (
        identity_secret
    )


async def test_a_live_key_is_never_rewritten_in_place(
    stack: LocalStack, engines: dict[str, AsyncEngine]
) -> None:
    s = subject()
    key = await PostgresKeyStore(engines["identity"], master(stack)).get_or_create(s)
    forged = master(stack).wrap(s, os.urandom(32))
    assert (
        await refused(  # same master key: that is replacing the key, not re-wrapping it
            engines["owner"],
            "UPDATE subject_keys SET wrapped_key = :w WHERE subject_id = :s",
            w=forged,
            s=s,
        )
        == REFUSED
    )
    for role in ("identity", "loans"):  # re-wrapping is the owner's alone
        assert (
            await refused(
                engines[role], "SELECT rewrap_subject_key(:s, 'a', :w, 'b', :w)", s=s, w=forged
            )
            == REFUSED
        )
    assert await PostgresKeyStore(engines["identity"], master(stack)).get(s) == key


@pytest.fixture
async def rotating(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[LocalStack]:
    """A stack of its own: rotating moves every key, the other tests' included."""
    s = LocalStack(pg_admin_url, kafka_bootstrap, tmp_path / "stack")
    await s.provision()
    try:
        yield s
    finally:
        await s.drop()


async def test_the_master_key_rotates_while_keys_are_created_read_and_destroyed(
    rotating: LocalStack, tmp_path: Path
) -> None:
    stack = rotating
    engines = {
        name: engine_for(stack.settings(name).keystore_url, pool_size=2)
        for name in ("identity", "loans")
    } | {"owner": new_engine(with_database(stack.admin_url, stack.namespace + KEYSTORE_DATABASE))}
    try:
        await _rotate_under_traffic(stack, engines, tmp_path)
    finally:
        for engine in engines.values():
            await engine.dispose()


async def _rotate_under_traffic(
    stack: LocalStack, engines: dict[str, AsyncEngine], tmp_path: Path
) -> None:
    old = master(stack)
    new_raw = os.urandom(32)
    new = MasterKey(new_raw)
    before = PostgresKeyStore(engines["identity"], old)
    secrets = {
        name: await ServiceSecrets(engines[name], old).get(PSEUDONYM)
        for name in ("identity", "loans")
    }
    subjects = [subject() for _ in range(60)]
    keys = await before.get_or_create_many(set(subjects))
    sealed = {
        s: await FieldCipher(before).encrypt_fields(s, "event-1", {"email": f"{s}@example.com"})
        for s in subjects[:10]
    }
    # services now run with both keys: new keys under the new one, old ones still open
    during = PostgresKeyStore(engines["identity"], MasterKeys(new, previous=old))
    loans_during = PostgresKeyStore(engines["loans"], MasterKeys(new, previous=old))
    gone = subjects[-5:]
    created: list[str] = []
    stop = asyncio.Event()

    async def service_traffic() -> int:
        reads = 0
        while not stop.is_set():
            fresh = subject()
            await loans_during.get_or_create(fresh)
            created.append(fresh)
            for s in subjects[:20]:
                assert await loans_during.get(s) == keys[s]
                reads += 1
            await asyncio.sleep(0)
        return reads

    async def erasures() -> None:
        for s in gone:
            assert await during.destroy(s) is True
            await asyncio.sleep(0.01)

    traffic = asyncio.create_task(service_traffic())
    erasing = asyncio.create_task(erasures())
    done = await rotate_master(engines["owner"], MasterKeys(new, previous=old), batch_size=7)
    await erasing
    stop.set()
    assert await traffic > 0
    assert done.rewrapped >= len(subjects) - len(gone)

    # the CLI finishes (and checks) what is left: nothing needs the old key any more
    key_file = tmp_path / "new.key"
    key_file.write_text(base64.b64encode(new_raw).decode())
    owner_url = with_database(stack.admin_url, stack.namespace + KEYSTORE_DATABASE)
    ran = stack.cli(
        "keys", "rotate-master", "--new-key-file", str(key_file), "--keystore-url", owner_url
    )
    assert "re-wrapped 0 keys" in ran.stdout and "no key needs the old master key" in ran.stdout

    after = PostgresKeyStore(engines["identity"], new)  # the old master key is forgotten
    for name, secret in secrets.items():  # services' secrets moved, and are the same
        assert await ServiceSecrets(engines[name], new).get(PSEUDONYM) == secret
    for s in subjects[:-5]:
        assert await after.get(s) == keys[s]
    for s in created:
        assert await after.get(s) is not None
    for s in gone:
        assert await after.get(s) is None
    for s, box in sealed.items():
        opened = await FieldCipher(after).decrypt_fields(s, "event-1", box)
        assert opened == {"email": f"{s}@example.com"}
    opened_gone = await FieldCipher(after).decrypt_fields(gone[0], "event-1", {"x": {"$enc": 1}})
    assert opened_gone == {"x": REDACTED}
    with pytest.raises(UnknownMasterKey):  # the old master key opens nothing now
        await PostgresKeyStore(engines["identity"], old).get(subjects[0])
